/* SMTP command parsing. Syntax errors map to RFC 3463 codes: 500 5.5.2 unknown command,
 * 501 5.5.4 bad arguments, 553 5.1.3/5.1.7 bad address, 555 5.5.4 unknown parameter, 553 5.6.7
 * a non-ASCII address that is not well-formed UTF-8 or comes without SMTPUTF8 (RFC 6531). */
#include "receiver/smtp_cmd.h"
#include "core/address.h"
#include "core/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    enum smtp_verb verb;
    int takes_arg; /* 0 none allowed, 1 optional, 2 required */
} verbs[] = {
    {"HELO", CMD_HELO, 2},       {"EHLO", CMD_EHLO, 2}, {"MAIL", CMD_MAIL, 2},
    {"RCPT", CMD_RCPT, 2},       {"DATA", CMD_DATA, 0}, {"RSET", CMD_RSET, 0},
    {"NOOP", CMD_NOOP, 1},       {"QUIT", CMD_QUIT, 0}, {"HELP", CMD_HELP, 1},
    {"VRFY", CMD_VRFY, 2},       {"EXPN", CMD_EXPN, 2}, {"STARTTLS", CMD_STARTTLS, 0},
    {"XCLIENT", CMD_XCLIENT, 2}, {"BDAT", CMD_BDAT, 2},
};

/* Extracts the path between '<' and '>' (quoted strings may hold '>'), dropping an obsolete
 * source route ("@a,@b:"). Returns a pointer just past '>' or NULL. */
static char *parse_path(char *p, char *out, size_t outlen)
{
    if (*p != '<')
        return NULL;
    p++;
    char *start = p;
    int quoted = 0;
    for (; *p; p++) {
        if (quoted && *p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '"')
            quoted = !quoted;
        else if (*p == '>' && !quoted)
            break;
    }
    if (*p != '>')
        return NULL;
    size_t n = (size_t)(p - start);
    if (n > 0 && start[0] == '@') {
        char *colon = memchr(start, ':', n);
        if (!colon)
            return NULL;
        n -= (size_t)(colon + 1 - start);
        start = colon + 1;
    }
    if (n >= outlen)
        return NULL;
    memcpy(out, start, n);
    out[n] = '\0';
    return p + 1;
}

static int parse_notify(const char *v, unsigned *out)
{
    char buf[64];
    size_t n = strlen(v);
    /* strtok_r would skip empty items; the grammar has none. */
    if (n == 0 || n >= sizeof buf || v[0] == ',' || v[n - 1] == ',' || strstr(v, ",,"))
        return -1;
    memcpy(buf, v, n + 1);
    unsigned bits = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned b = strcasecmp(tok, "NEVER") == 0     ? DSN_NOTIFY_NEVER
                     : strcasecmp(tok, "SUCCESS") == 0 ? DSN_NOTIFY_SUCCESS
                     : strcasecmp(tok, "FAILURE") == 0 ? DSN_NOTIFY_FAILURE
                     : strcasecmp(tok, "DELAY") == 0   ? DSN_NOTIFY_DELAY
                                                       : 0;
        if (!b || (bits & b))
            return -1;
        bits |= b;
    }
    /* RFC 3461 §4.1: NEVER stands alone. */
    if ((bits & DSN_NOTIFY_NEVER) && bits != DSN_NOTIFY_NEVER)
        return -1;
    *out = bits;
    return 0;
}

/* ORCPT=addr-type;xtext (RFC 3461 §4.2), kept decoded as "addr-type;address". */
static int parse_orcpt(const char *v, char *out, size_t outlen)
{
    const char *semi = strchr(v, ';');
    if (!semi || semi == v || (size_t)(semi - v) > 32)
        return -1;
    for (const char *p = v; p < semi; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return -1;
    size_t tl = (size_t)(semi - v) + 1;
    if (tl >= outlen || !semi[1])
        return -1;
    memcpy(out, v, tl);
    return xtext_decode(semi + 1, out + tl, outlen - tl) < 0 ? -1 : 0;
}

/* One parameter of MAIL (SIZE, BODY, SMTPUTF8, RET, ENVID) or RCPT (NOTIFY, ORCPT). Returns 0,
 * or -1 with *reply set; seen catches repeats (RFC 5321 §4.1.2 allows each once). */
static int parse_param(char *p, struct smtp_cmd *cmd, unsigned *seen, const char **reply)
{
    static const char *const names[] = {"SIZE",  "BODY",   "SMTPUTF8", "RET",
                                        "ENVID", "NOTIFY", "ORCPT"};
    char *eq = strchr(p, '=');
    size_t kl = eq ? (size_t)(eq - p) : strlen(p);
    const char *v = eq ? eq + 1 : NULL;
    int k = -1;
    for (int i = 0; i < 7; i++)
        if (strlen(names[i]) == kl && strncasecmp(p, names[i], kl) == 0)
            k = i;
    bool mail = cmd->verb == CMD_MAIL;
    /* Only SMTPUTF8 is a bare keyword; "SIZE" alone is no parameter sluice knows. */
    if (k >= 0 && k != 2 && !v)
        k = -1;
    if (k < 0 || (mail && k >= 5) || (!mail && k < 5)) {
        *reply =
            mail ? "555 5.5.4 Unsupported MAIL parameter" : "555 5.5.4 Unsupported RCPT parameter";
        return -1;
    }
    if (*seen & (1u << k)) {
        *reply = "501 5.5.4 Duplicate parameter";
        return -1;
    }
    *seen |= 1u << k;
    switch (k) {
    case 0: {
        char *num_end;
        errno = 0;
        long long n = v ? strtoll(v, &num_end, 10) : -1;
        if (!v || !*v || *num_end || n < 0 || errno) {
            *reply = "501 5.5.4 Bad SIZE parameter";
            return -1;
        }
        cmd->size = n;
        return 0;
    }
    case 1:
        if (v && strcasecmp(v, "8BITMIME") == 0)
            cmd->body = BODY_8BITMIME;
        else if (v && strcasecmp(v, "7BIT") == 0)
            cmd->body = BODY_7BIT;
        else {
            *reply = "501 5.5.4 Bad BODY parameter";
            return -1;
        }
        return 0;
    case 2:
        if (v) {
            *reply = "501 5.5.4 SMTPUTF8 takes no value";
            return -1;
        }
        cmd->smtputf8 = true;
        return 0;
    case 3:
        if (v && strcasecmp(v, "FULL") == 0)
            cmd->ret = DSN_RET_FULL;
        else if (v && strcasecmp(v, "HDRS") == 0)
            cmd->ret = DSN_RET_HDRS;
        else {
            *reply = "501 5.5.4 Bad RET parameter (FULL or HDRS)";
            return -1;
        }
        return 0;
    case 4:
        if (!v || strlen(v) > 100 || xtext_decode(v, cmd->envid, sizeof cmd->envid) <= 0) {
            *reply = "501 5.5.4 Bad ENVID parameter (xtext, at most 100 characters)";
            return -1;
        }
        return 0;
    case 5:
        if (!v || parse_notify(v, &cmd->notify) < 0) {
            *reply = "501 5.5.4 Bad NOTIFY parameter (NEVER, or SUCCESS,FAILURE,DELAY)";
            return -1;
        }
        return 0;
    default:
        if (!v || parse_orcpt(v, cmd->orcpt, sizeof cmd->orcpt) < 0) {
            *reply = "501 5.5.4 Bad ORCPT parameter (addr-type;xtext)";
            return -1;
        }
        return 0;
    }
}

static int parse_params(char *p, struct smtp_cmd *cmd, const char **reply)
{
    unsigned seen = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *end = p + strcspn(p, " ");
        char save = *end;
        *end = '\0';
        if (parse_param(p, cmd, &seen, reply) < 0)
            return -1;
        *end = save;
        p = end;
    }
    return 0;
}

/* The path's syntax, once the parameters are known: a non-ASCII address must be well-formed
 * UTF-8 and, on MAIL, come with SMTPUTF8 (RCPT leaves that to the session, which knows the
 * transaction). */
static int check_path(struct smtp_cmd *cmd, const char **reply)
{
    bool mail = cmd->verb == CMD_MAIL;
    if (cmd->path[0] == '\0') {
        if (!mail) {
            *reply = "501 5.1.3 Bad recipient address syntax";
            return -1;
        }
        return 0;
    }
    cmd->path_utf8 = utf8_non_ascii(cmd->path);
    if (cmd->path_utf8 && !utf8_valid(cmd->path, strlen(cmd->path))) {
        *reply = mail ? "553 5.6.7 Sender address is not well-formed UTF-8"
                      : "553 5.6.7 Recipient address is not well-formed UTF-8";
        return -1;
    }
    if (!(cmd->path_utf8 ? address_valid_utf8(cmd->path) : address_valid(cmd->path))) {
        *reply =
            mail ? "553 5.1.7 Bad sender address syntax" : "553 5.1.3 Bad recipient address syntax";
        return -1;
    }
    if (mail && cmd->path_utf8 && !cmd->smtputf8) {
        *reply = "553 5.6.7 SMTPUTF8 required for a non-ASCII sender address";
        return -1;
    }
    return 0;
}

/* MAIL FROM:<path> [params] and RCPT TO:<path> [params]. */
static int parse_envelope(char *arg, struct smtp_cmd *cmd, const char **reply)
{
    const char *kw = cmd->verb == CMD_MAIL ? "FROM:" : "TO:";
    size_t kwl = strlen(kw);
    if (strncasecmp(arg, kw, kwl) != 0) {
        *reply = cmd->verb == CMD_MAIL ? "501 5.5.4 Syntax: MAIL FROM:<address>"
                                       : "501 5.5.4 Syntax: RCPT TO:<address>";
        return -1;
    }
    char *p = arg + kwl;
    while (*p == ' ') /* common leniency: "MAIL FROM: <a@b>" */
        p++;
    char *rest = parse_path(p, cmd->path, sizeof cmd->path);
    if (!rest || (*rest && *rest != ' ')) {
        *reply = cmd->verb == CMD_MAIL ? "501 5.1.7 Bad sender address syntax"
                                       : "501 5.1.3 Bad recipient address syntax";
        return -1;
    }
    if (parse_params(rest, cmd, reply) < 0)
        return -1;
    return check_path(cmd, reply);
}

/* "BDAT" SP chunk-size [SP "LAST"] (RFC 3030 §2): the size is 1*DIGIT; a sign, a space or a
 * value beyond long long is a syntax error (the session then reads nothing). */
static int parse_bdat(const char *arg, struct smtp_cmd *cmd, const char **reply)
{
    *reply = "501 5.5.4 Syntax: BDAT chunk-size [LAST]";
    const char *p = arg;
    long long n = 0;
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (LLONG_MAX - (*p - '0')) / 10)
            return -1;
        n = n * 10 + (*p - '0');
    }
    if (*p == ' ') {
        while (*p == ' ')
            p++;
        if (strcasecmp(p, "LAST") != 0)
            return -1;
        cmd->last = true;
    } else if (*p) {
        return -1;
    }
    cmd->size = n;
    return 0;
}

int smtp_cmd_parse(char *line, size_t len, struct smtp_cmd *cmd, const char **reply)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->size = -1;
    cmd->arg = "";
    if (memchr(line, '\0', len)) {
        *reply = "500 5.5.2 Syntax error: NUL byte in command";
        return -1;
    }
    while (len > 0 && line[len - 1] == ' ') /* trailing spaces are harmless; trim them */
        line[--len] = '\0';
    size_t vlen = strcspn(line, " ");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strlen(verbs[i].name) != vlen || strncasecmp(line, verbs[i].name, vlen) != 0)
            continue;
        cmd->verb = verbs[i].verb;
        char *arg = line + vlen;
        while (*arg == ' ')
            arg++;
        cmd->arg = arg;
        if (verbs[i].takes_arg == 0 && *arg) {
            *reply = "501 5.5.4 Syntax error: no parameters allowed";
            return -1;
        }
        if (verbs[i].takes_arg == 2 && !*arg) {
            *reply = cmd->verb == CMD_HELO || cmd->verb == CMD_EHLO
                         ? "501 5.5.4 Syntax: EHLO hostname"
                         : "501 5.5.4 Syntax error: argument required";
            return -1;
        }
        if (cmd->verb == CMD_MAIL || cmd->verb == CMD_RCPT)
            return parse_envelope(arg, cmd, reply);
        if (cmd->verb == CMD_BDAT)
            return parse_bdat(arg, cmd, reply);
        return 0;
    }
    cmd->verb = CMD_UNKNOWN;
    *reply = "500 5.5.2 Error: command not recognized";
    return -1;
}
