/* Recipient conditions with SES semantics. Domains compare case-insensitively; so do local
 * parts, because every mail operator expects User@ and user@ to be one mailbox. UTF-8 (RFC
 * 6531) addresses and U-label domains are taken too; only their ASCII letters ignore case. */
#include "rules/ruleset.h"
#include "core/address.h"
#include "core/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int rcpt_cond_parse(const char *text, struct rcpt_cond *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *at = strrchr(text, '@');
    if (at) {
        if (!address_valid_utf8(text)) {
            snprintf(err, errlen, "recipient condition '%s' is not a valid address", text);
            return -1;
        }
        out->local = xstrndup(text, (size_t)(at - text));
        out->domain = xstrdup(at + 1);
    } else {
        const char *d = text[0] == '.' ? text + 1 : text;
        if (!domain_valid_utf8(d)) {
            snprintf(err, errlen, "recipient condition '%s' is not a valid domain", text);
            return -1;
        }
        out->domain = xstrdup(d);
        out->subdomains = text[0] == '.';
    }
    ascii_lower(out->domain);
    out->text = xstrdup(text);
    return 0;
}

void rcpt_cond_free(struct rcpt_cond *c)
{
    free(c->text);
    free(c->local);
    free(c->domain);
}

bool rcpt_cond_match(const struct rcpt_cond *c, const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (!at)
        return false;
    if (!domain_matches(at + 1, c->domain, c->subdomains))
        return false;
    if (!c->local)
        return true;
    size_t cl = strlen(c->local), al = (size_t)(at - addr);
    if (al < cl || strncasecmp(addr, c->local, cl) != 0)
        return false;
    return al == cl || addr[cl] == '+';
}

bool rule_matches_rcpt(const struct rule *r, const char *addr)
{
    if (r->nrcpts == 0)
        return true;
    for (size_t i = 0; i < r->nrcpts; i++)
        if (rcpt_cond_match(&r->rcpts[i], addr))
            return true;
    return false;
}
