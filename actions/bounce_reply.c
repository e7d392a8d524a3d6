/* Bounce reply validation and formatting. */
#include "actions/bounce_reply.h"
#include "lua/lua_fields.h"
#include "core/address.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int digits(const char **p, int min, int max)
{
    int n = 0;
    while (isdigit((unsigned char)**p)) {
        (*p)++;
        n++;
    }
    return n >= min && n <= max;
}

int bounce_reply_validate(const char *code, const char *status, const char *message, char *err,
                          size_t errlen)
{
    if (strlen(code) != 3 || (code[0] != '4' && code[0] != '5') ||
        !isdigit((unsigned char)code[1]) || !isdigit((unsigned char)code[2])) {
        snprintf(err, errlen, "smtp_reply_code '%s' must be 4xx or 5xx (three digits)", code);
        return -1;
    }
    const char *p = status;
    if (!((p[0] == '4' || p[0] == '5') && p[1] == '.' && (p += 2) && digits(&p, 1, 3) &&
          *p++ == '.' && digits(&p, 1, 3) && *p == '\0')) {
        snprintf(err, errlen, "status_code '%s' must look like 5.7.1 (RFC 3463)", status);
        return -1;
    }
    if (status[0] != code[0]) {
        snprintf(err, errlen, "status_code '%s' and smtp_reply_code '%s' disagree on the class",
                 status, code);
        return -1;
    }
    for (const unsigned char *m = (const unsigned char *)message; *m; m++) {
        if (*m < 0x20 || *m == 0x7f) {
            snprintf(err, errlen, "bounce message must be one line of printable text");
            return -1;
        }
    }
    if (strlen(message) > 400) {
        snprintf(err, errlen, "bounce message is longer than 400 octets");
        return -1;
    }
    return 0;
}

int bounce_reply_parse(struct lua_State *L, int idx, struct bounce_reply *out,
                       const char *default_code, const char *default_status,
                       const char *default_message, char *err, size_t errlen)
{
    char *code = NULL, *status = NULL;
    memset(out, 0, sizeof *out);
    int rc = -1;
    if (lf_string(L, idx, "smtp_reply_code", false, &code, err, errlen) < 0 ||
        lf_string(L, idx, "status_code", false, &status, err, errlen) < 0 ||
        lf_string(L, idx, "message", false, &out->message, err, errlen) < 0 ||
        lf_string(L, idx, "sender", false, &out->sender, err, errlen) < 0)
        goto done;
    const char *c = code ? code : default_code, *s = status ? status : default_status;
    if (!out->message)
        out->message = strdup(default_message);
    if (bounce_reply_validate(c, s, out->message, err, errlen) < 0)
        goto done;
    if (out->sender && !address_valid(out->sender)) {
        snprintf(err, errlen, "sender '%s' is not a valid address", out->sender);
        goto done;
    }
    snprintf(out->code, sizeof out->code, "%s", c);
    snprintf(out->status, sizeof out->status, "%s", s);
    rc = 0;
done:
    free(code);
    free(status);
    return rc;
}

void bounce_reply_format(const struct bounce_reply *b, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s %s %s", b->code, b->status, b->message);
}

void bounce_reply_free(struct bounce_reply *b)
{
    free(b->message);
    free(b->sender);
    b->message = b->sender = NULL;
}
