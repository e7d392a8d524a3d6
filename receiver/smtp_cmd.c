/* SMTP command parsing. Syntax errors map to RFC 3463 codes: 500 5.5.2 unknown command,
 * 501 5.5.4 bad arguments, 553 5.1.3/5.1.7 bad address, 555 5.5.4 unknown parameter. */
#include "receiver/smtp_cmd.h"
#include "core/address.h"

#include <ctype.h>
#include <errno.h>
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
    {"XCLIENT", CMD_XCLIENT, 2},
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

static int parse_mail_params(char *p, struct smtp_cmd *cmd, const char **reply)
{
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *end = p + strcspn(p, " ");
        char save = *end;
        *end = '\0';
        char *eq = strchr(p, '=');
        if (eq && strncasecmp(p, "SIZE=", 5) == 0) {
            char *num_end;
            errno = 0;
            long long v = strtoll(eq + 1, &num_end, 10);
            if (eq[1] == '\0' || *num_end || v < 0 || errno) {
                *reply = "501 5.5.4 Bad SIZE parameter";
                return -1;
            }
            cmd->size = v;
        } else if (eq && strncasecmp(p, "BODY=", 5) == 0) {
            if (strcasecmp(eq + 1, "8BITMIME") == 0) {
                cmd->body = BODY_8BITMIME;
            } else if (strcasecmp(eq + 1, "7BIT") == 0) {
                cmd->body = BODY_7BIT;
            } else {
                *reply = "501 5.5.4 Bad BODY parameter";
                return -1;
            }
        } else {
            *reply = "555 5.5.4 Unsupported MAIL parameter";
            return -1;
        }
        *end = save;
        p = end;
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
    if (cmd->path[0] == '\0') {
        if (cmd->verb == CMD_RCPT) {
            *reply = "501 5.1.3 Bad recipient address syntax";
            return -1;
        }
    } else if (!address_valid(cmd->path)) {
        *reply = cmd->verb == CMD_MAIL ? "553 5.1.7 Bad sender address syntax"
                                       : "553 5.1.3 Bad recipient address syntax";
        return -1;
    }
    if (cmd->verb == CMD_RCPT) {
        while (*rest == ' ')
            rest++;
        if (*rest) {
            *reply = "555 5.5.4 Unsupported RCPT parameter";
            return -1;
        }
        return 0;
    }
    return parse_mail_params(rest, cmd, reply);
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
        return 0;
    }
    cmd->verb = CMD_UNKNOWN;
    *reply = "500 5.5.2 Error: command not recognized";
    return -1;
}
