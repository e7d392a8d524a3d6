/* DMARC policy records (RFC 7489 §6.3, §6.6.3) parsed here rather than by libopendmarc 1.4.2,
 * which accepts "v=dmarc1" in any case and rejects records with tags it does not know. */
#ifndef SLUICE_AUTH_DMARC_RECORD_H
#define SLUICE_AUTH_DMARC_RECORD_H

#include <stdbool.h>

struct dmarc_record {
    char p;     /* 'n', 'q', 'r' */
    char sp;    /* 'n', 'q', 'r', or 0 when not given (p applies) */
    char adkim; /* 'r' or 's' */
    char aspf;  /* 'r' or 's' */
    int pct;    /* 0..100 */
    char psd;   /* RFC 9989 psd=: 'y', 'n', or 'u' (not given) */
    char np;    /* RFC 9989 np=: like sp, for subdomains that do not exist; 0 when not given */
    bool test;  /* RFC 9989 t=y: the policy is being tested */
};

/* True when the TXT string s is a DMARC record at all: it starts with the v tag, whose value is
 * exactly "DMARC1" (RFC 7489 §6.4: "v" *WSP "=" *WSP %x44.4d.41.52.43.31). */
bool dmarc_is_record(const char *s);

/* Parses the record s (for which dmarc_is_record() holds). Unknown tags are ignored (§6.3);
 * a missing or invalid p= makes the record count as p=none when rua= holds at least one
 * syntactically valid URI, and as no record at all otherwise (§6.6.3); an invalid sp=,
 * adkim=, aspf= or pct= counts as not given. Returns 0, or -1 when the record is to be treated
 * as absent (*why then names the reason). */
int dmarc_record_parse(const char *s, struct dmarc_record *r, const char **why);

#endif
