/* Path template expansion with directory-escape refusal. */
#include "actions/path_template.h"
#include "core/address.h"

#include <stdio.h>
#include <string.h>

static const char *const vars[] = {"domain", "user", "local", "rule", "address", NULL};
#define NVARS 5

static int var_index(const char *name, size_t n)
{
    for (int i = 0; vars[i]; i++)
        if (strlen(vars[i]) == n && strncmp(vars[i], name, n) == 0)
            return i;
    return -1;
}

int path_template_check(const char *tmpl, char *err, size_t errlen)
{
    if (!*tmpl) {
        snprintf(err, errlen, "maildir path must not be empty");
        return -1;
    }
    for (const char *p = tmpl; *p; p++) {
        if (*p == '}') {
            snprintf(err, errlen, "unmatched '}' in path template '%s'", tmpl);
            return -1;
        }
        if (*p != '{')
            continue;
        const char *end = strchr(p, '}');
        if (!end) {
            snprintf(err, errlen, "unterminated '{' in path template '%s'", tmpl);
            return -1;
        }
        if (var_index(p + 1, (size_t)(end - p - 1)) < 0) {
            snprintf(err, errlen,
                     "unknown template variable '{%.*s}' in '%s' (known: {domain}, {user}, "
                     "{local}, {rule}, {address})",
                     (int)(end - p - 1), p + 1, tmpl);
            return -1;
        }
        p = end;
    }
    return 0;
}

static int safe_component(const char *v)
{
    if (!*v || v[0] == '.')
        return 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

/* for_path: refuse values that could leave a directory tree. */
static int expand(const char *tmpl, const char *rcpt, const char *rule, int for_path, char *out,
                  size_t outlen, char *err, size_t errlen)
{
    char values[NVARS][256];
    const char *dom = address_domain(rcpt);
    if (!dom || address_user(rcpt, values[1], sizeof values[1]) < 0 ||
        address_local_unquoted(rcpt, values[2], sizeof values[2]) < 0) {
        snprintf(err, errlen, "recipient '%s' has no usable local part", rcpt);
        return -1;
    }
    snprintf(values[0], sizeof values[0], "%s", dom);
    snprintf(values[3], sizeof values[3], "%s", rule);
    snprintf(values[4], sizeof values[4], "%s", rcpt);
    for (int i = 0; i < NVARS; i++)
        if (i != 3)
            ascii_lower(values[i]);
    size_t len = 0;
    for (const char *p = tmpl; *p; p++) {
        const char *piece = p;
        size_t n = 1;
        if (*p == '{') {
            const char *end = strchr(p, '}');
            int v = end ? var_index(p + 1, (size_t)(end - p - 1)) : -1;
            if (v < 0) {
                snprintf(err, errlen, "bad path template '%s'", tmpl);
                return -1;
            }
            if (for_path && !safe_component(values[v])) {
                snprintf(err, errlen, "{%s} value '%s' could escape the maildir tree", vars[v],
                         values[v]);
                return -1;
            }
            piece = values[v];
            n = strlen(piece);
            p = end;
        }
        if (len + n >= outlen) {
            snprintf(err, errlen, "expanded template '%s' is too long", tmpl);
            return -1;
        }
        memcpy(out + len, piece, n);
        len += n;
    }
    out[len] = '\0';
    return 0;
}

int path_template_expand(const char *tmpl, const char *rcpt, const char *rule, char *out,
                         size_t outlen, char *err, size_t errlen)
{
    return expand(tmpl, rcpt, rule, 1, out, outlen, err, errlen);
}

int address_template_expand(const char *tmpl, const char *rcpt, const char *rule, char *out,
                            size_t outlen, char *err, size_t errlen)
{
    if (expand(tmpl, rcpt, rule, 0, out, outlen, err, errlen) < 0)
        return -1;
    if (!address_valid(out)) {
        snprintf(err, errlen, "'%s' (from '%s' for %s) is not a valid address", out, tmpl, rcpt);
        return -1;
    }
    return 0;
}
