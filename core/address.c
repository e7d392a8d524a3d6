/* Envelope address syntax (RFC 5321 §4.1.2) and matching helpers. */
#include "core/address.h"
#include "core/utf8.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

/* utf8: RFC 6531 §3.3 adds UTF8-non-ascii to atext and qtext (well-formedness is checked on
 * the whole address first). */
static bool atext(unsigned char c, bool utf8)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL) || (utf8 && c >= 0x80);
}

static bool valid_local(const char *s, size_t n, bool utf8)
{
    if (n == 0 || n > 64)
        return false;
    if (s[0] == '"') {
        if (n < 2 || s[n - 1] != '"')
            return false;
        for (size_t i = 1; i < n - 1; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '\\') {
                if (++i >= n - 1 || s[i] < 32 || s[i] > 126)
                    return false;
            } else if (c < 32 || (c > 126 && !(utf8 && c >= 0x80)) || c == '"') {
                return false;
            }
        }
        return true;
    }
    bool prev_dot = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (prev_dot)
                return false;
            prev_dot = true;
        } else if (atext(c, utf8)) {
            prev_dot = false;
        } else {
            return false;
        }
    }
    return !prev_dot;
}

/* utf8: U-labels (RFC 6531 §3.3 sub-domain =/ U-label) are taken as their UTF-8 octets. */
static bool valid_domain(const char *name, bool utf8)
{
    size_t n = strlen(name);
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-')
                return false;
            label = 0;
        } else if (isalnum(c) || c == '_' || (c == '-' && label > 0) || (utf8 && c >= 0x80)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && name[n - 1] != '-';
}

bool domain_valid(const char *name)
{
    return valid_domain(name, false);
}

bool domain_valid_utf8(const char *name)
{
    return utf8_valid(name, strlen(name)) && valid_domain(name, true);
}

static bool valid_literal(const char *s, size_t n)
{
    if (n < 3 || s[0] != '[' || s[n - 1] != ']')
        return false;
    for (size_t i = 1; i < n - 1; i++)
        if (!isxdigit((unsigned char)s[i]) && !strchr(".:IPvV6", s[i]))
            return false;
    return true;
}

const char *address_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : NULL;
}

static bool valid_address(const char *s, bool utf8)
{
    const char *at = strrchr(s, '@');
    if (!at || strlen(s) > 254)
        return false;
    const char *dom = at + 1;
    if (!valid_local(s, (size_t)(at - s), utf8))
        return false;
    return dom[0] == '[' ? valid_literal(dom, strlen(dom)) : valid_domain(dom, utf8);
}

bool address_valid(const char *s)
{
    return valid_address(s, false);
}

bool address_valid_utf8(const char *s)
{
    return utf8_valid(s, strlen(s)) && valid_address(s, true);
}

int address_local(const char *addr, char *out, size_t outlen)
{
    const char *at = strrchr(addr, '@');
    if (!at || (size_t)(at - addr) >= outlen)
        return -1;
    size_t n = (size_t)(at - addr);
    memcpy(out, addr, n);
    out[n] = '\0';
    return (int)n;
}

int address_local_unquoted(const char *addr, char *out, size_t outlen)
{
    int n = address_local(addr, out, outlen);
    if (n < 2 || out[0] != '"')
        return n;
    size_t w = 0;
    for (int r = 1; r < n - 1; r++) {
        if (out[r] == '\\' && r + 1 < n - 1)
            r++;
        out[w++] = out[r];
    }
    out[w] = '\0';
    return (int)w;
}

int address_user(const char *addr, char *out, size_t outlen)
{
    int n = address_local_unquoted(addr, out, outlen);
    if (n <= 0)
        return n;
    char *plus = strchr(out, '+');
    /* "+label" with an empty user part ("+x@d") is kept whole: there is no user to strip to. */
    if (plus && plus != out) {
        *plus = '\0';
        n = (int)(plus - out);
    }
    return n;
}

void ascii_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

bool domain_matches(const char *domain, const char *parent, bool subdomains)
{
    if (!subdomains)
        return strcasecmp(domain, parent) == 0;
    size_t dl = strlen(domain), pl = strlen(parent);
    return dl > pl + 1 && domain[dl - pl - 1] == '.' && strcasecmp(domain + dl - pl, parent) == 0;
}

bool domain_accepted(char *const *domains, size_t n, const char *domain)
{
    for (size_t i = 0; domain && i < n; i++) {
        const char *d = domains[i];
        if (d[0] == '.' ? domain_matches(domain, d + 1, true) : strcasecmp(domain, d) == 0)
            return true;
    }
    return false;
}
