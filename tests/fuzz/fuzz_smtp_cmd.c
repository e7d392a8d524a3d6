/* libFuzzer target: the SMTP command-line parser on arbitrary lines. The session hands it a
 * NUL-terminated line of at most 510 octets without CR/LF; the parser must still be safe on any
 * bytes, and its results must point into the line or be a complete reply. */
#include "receiver/smtp_cmd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    memcpy(line, data, size);
    line[size] = '\0';
    struct smtp_cmd cmd;
    const char *reply = NULL;
    if (smtp_cmd_parse(line, size, &cmd, &reply) < 0) {
        /* A refusal is a whole reply: three digits, a space, text. */
        if (!reply || strlen(reply) < 4 || reply[0] < '2' || reply[0] > '5' || reply[3] != ' ')
            abort();
    } else {
        if (!cmd.arg)
            abort();
        /* arg is "" (a literal) or points into the line. */
        if (*cmd.arg && (cmd.arg < line || cmd.arg > line + size))
            abort();
        if (strlen(cmd.path) >= sizeof cmd.path)
            abort();
    }
    free(line);
    return 0;
}
