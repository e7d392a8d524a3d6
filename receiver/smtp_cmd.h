/* SMTP command-line parser (RFC 5321 §4.1, RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531
 * SMTPUTF8, RFC 3461 DSN, RFC 3030 BDAT). Pure: no I/O,
 * no allocation; results point into the caller's line buffer. */
#ifndef SLUICE_SMTP_CMD_H
#define SLUICE_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/envelope.h"

enum smtp_verb {
    CMD_UNKNOWN,
    CMD_HELO,
    CMD_EHLO,
    CMD_MAIL,
    CMD_RCPT,
    CMD_DATA,
    CMD_RSET,
    CMD_NOOP,
    CMD_QUIT,
    CMD_HELP,
    CMD_VRFY,
    CMD_EXPN,
    CMD_STARTTLS,
    CMD_XCLIENT,
    CMD_BDAT,
};

enum smtp_body { BODY_UNSPECIFIED, BODY_7BIT, BODY_8BITMIME };

struct smtp_cmd {
    enum smtp_verb verb;
    const char *arg; /* text after the verb and one space; "" when none */
    char path[512];  /* MAIL/RCPT: the address without <>, "" for the null path */
    long long size;  /* MAIL SIZE=, BDAT chunk size; -1 when absent */
    bool last;       /* BDAT LAST */
    enum smtp_body body;
    bool smtputf8;    /* MAIL SMTPUTF8 */
    bool path_utf8;   /* path holds UTF-8 (valid; RCPT: the session checks SMTPUTF8) */
    enum dsn_ret ret; /* MAIL RET= */
    char envid[101];  /* MAIL ENVID=, xtext decoded; "" when absent */
    unsigned notify;  /* RCPT NOTIFY=, DSN_NOTIFY_* bits */
    char orcpt[512];  /* RCPT ORCPT=, "addr-type;address" with the xtext decoded; "" absent */
};

/* Parses one command line (without CRLF; may be modified in place). Returns 0 on success, or
 * -1 and sets *reply to a complete SMTP reply (code, enhanced code, text, no CRLF). */
int smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *cmd, const char **reply);

#endif
