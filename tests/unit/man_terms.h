/* The terms a section of sluice.lua(5) documents, for the unit tests that check a table of the
 * code (server keys, condition fields) against the page: each ".TP" followed by ".B term" or,
 * with several, ".BR a \", \" b" (the words outside the quoted punctuation). */
#ifndef SLUICE_TEST_MAN_TERMS_H
#define SLUICE_TEST_MAN_TERMS_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAN_TERM_MAX 64

/* Fills terms[0..max) with the terms of ".SH section" in the page under $SLUICE_SOURCE_DIR (or
 * the current directory). Returns how many, or -1 when the page cannot be read. */
static int man_terms(const char *section, char terms[][MAN_TERM_MAX], int max)
{
    const char *src = getenv("SLUICE_SOURCE_DIR");
    char file[4096], line[512], prev[512] = "", head[128];
    snprintf(file, sizeof file, "%s/docs/man/sluice.lua.5", src ? src : ".");
    snprintf(head, sizeof head, ".SH %s", section);
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    bool in = false;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, ".SH ", 4) == 0)
            in = strcmp(line, head) == 0;
        else if (in && strcmp(prev, ".TP") == 0 &&
                 (strncmp(line, ".B ", 3) == 0 || strncmp(line, ".BR ", 4) == 0)) {
            char words[512];
            snprintf(words, sizeof words, "%s", strchr(line, ' ') + 1);
            for (char *t = strtok(words, " "); t && n < max; t = strtok(NULL, " "))
                if (!strchr(t, '"'))
                    snprintf(terms[n++], MAN_TERM_MAX, "%s", t);
        }
        snprintf(prev, sizeof prev, "%s", line);
    }
    fclose(f);
    return n;
}

#endif
