/* The RFC 7208 grammar (section 12), term by term, and the libspf2 form of a valid record. See
 * spf_syntax.h for what the rewrite changes and why. */
#include "auth/spf_syntax.h"
#include "core/buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct term {
    const char *p; /* the term's text (not NUL-terminated) */
    size_t len;
};

struct parse {
    const struct spf_macro_values *mv; /* NULL: digit transformers are passed on as written */
    bool v6;
    bool has_all;
    int redirects, exps;
    char *err;
    size_t errlen;
};

static int fail(struct parse *ps, const char *why, struct term t)
{
    int n = t.len > 40 ? 40 : (int)t.len;
    snprintf(ps->err, ps->errlen, "%s in '%.*s'", why, n, t.p);
    return -1;
}

bool spf_is_record(const char *s, size_t len)
{
    return len >= 6 && strncasecmp(s, "v=spf1", 6) == 0 && (len == 6 || s[6] == ' ');
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* macro-string (§7.1): literals are visible ASCII except '%'; every '%' starts "%%", "%_",
 * "%-" or "%{" letter *DIGIT ["r"] *delimiter "}". The letters c, r and t belong to
 * explanation text only, never to a record. *ends_macro tells whether the last token was a
 * macro-expand (a valid domain-end). */
static bool macro_string(const char *p, size_t len, bool *ends_macro)
{
    *ends_macro = false;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)p[i];
        if (c != '%') {
            if (c < 0x21 || c > 0x7e)
                return false;
            *ends_macro = false;
            i++;
            continue;
        }
        if (i + 1 >= len)
            return false;
        char n = p[i + 1];
        if (n == '%' || n == '_' || n == '-') {
            *ends_macro = true;
            i += 2;
            continue;
        }
        if (n != '{' || i + 2 >= len || !strchr("slodiphvSLODIPHV", p[i + 2]) || !p[i + 2])
            return false;
        size_t j = i + 3;
        long digits = 0;
        while (j < len && is_digit((unsigned char)p[j]) && digits < 100000)
            digits = digits * 10 + (p[j++] - '0');
        if (j > i + 3 && digits == 0) /* §7.3: a DIGIT transformer must be nonzero */
            return false;
        if (j < len && (p[j] == 'r' || p[j] == 'R'))
            j++;
        while (j < len && p[j] && strchr(".-+,/_=", p[j]))
            j++;
        if (j >= len || p[j] != '}')
            return false;
        *ends_macro = true;
        i = j + 1;
    }
    return true;
}

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel(const char *p, size_t len)
{
    if (len == 0)
        return false;
    bool alpha = false, hyphen = false;
    for (size_t i = 0; i < len; i++) {
        if (is_alpha((unsigned char)p[i]))
            alpha = true;
        else if (p[i] == '-')
            hyphen = true;
        else if (!is_digit((unsigned char)p[i]))
            return false;
    }
    if (!hyphen)
        return alpha;
    return p[0] != '-' && p[len - 1] != '-';
}

/* domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand */
static bool domain_spec(const char *p, size_t len)
{
    bool ends_macro;
    if (len == 0 || !macro_string(p, len, &ends_macro))
        return false;
    if (ends_macro)
        return true;
    if (p[len - 1] == '.')
        len--;
    size_t dot = len;
    while (dot > 0 && p[dot - 1] != '.')
        dot--;
    if (dot == 0) /* no "." before the top label */
        return false;
    /* the top label must be literal text: no '%' inside it */
    if (memchr(p + dot, '%', len - dot))
        return false;
    return toplabel(p + dot, len - dot);
}

/* "/" ( "0" / %x31-39 0*NDIGIT ), value at most max. Returns the length or -1. */
static int cidr_value(const char *p, size_t len, int max)
{
    if (len == 0 || len > 3 || (p[0] == '0' && len > 1))
        return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v <= max ? v : -1;
}

/* Splits a trailing dual-cidr-length ("/N", "//M", "/N//M") off [p, p+*len). Returns 0 with
 * c4/c6 (-1 = not given) and *len shortened, or -1 on a bad length. */
static int dual_cidr(const char *p, size_t *len, int *c4, int *c6)
{
    *c4 = *c6 = -1;
    size_t end = *len, i = end;
    while (i > 0 && is_digit((unsigned char)p[i - 1]))
        i--;
    if (i == end || i == 0 || p[i - 1] != '/')
        return 0; /* no trailing "/digits": the slash, if any, belongs to the domain */
    size_t num = i;
    if (i >= 2 && p[i - 2] == '/') {
        if ((*c6 = cidr_value(p + num, end - num, 128)) < 0)
            return -1;
        end = i - 2;
        i = end;
        while (i > 0 && is_digit((unsigned char)p[i - 1]))
            i--;
        if (i == end || i == 0 || p[i - 1] != '/') {
            *len = end;
            return 0;
        }
        num = i;
    }
    if ((*c4 = cidr_value(p + num, end - num, 32)) < 0)
        return -1;
    *len = num - 1;
    return 0;
}

/* The value macro letter c expands to in this check_host(), or NULL when not known here. */
static const char *macro_value(const struct spf_macro_values *mv, char c)
{
    if (!mv)
        return NULL;
    switch (tolower((unsigned char)c)) {
    case 's':
        return mv->s;
    case 'l':
        return mv->l;
    case 'o':
        return mv->o;
    case 'd':
        return mv->d;
    case 'i':
        return mv->i;
    case 'h':
        return mv->h;
    case 'v':
        return mv->v;
    default:
        return NULL;
    }
}

/* How many parts value splits into at the delimiters delim[0..dlen) ("." when none, §7.3). */
static size_t macro_parts(const char *value, const char *delim, size_t dlen)
{
    size_t parts = 1;
    for (const char *v = value; *v; v++)
        if (dlen ? memchr(delim, *v, dlen) != NULL : *v == '.')
            parts++;
    return parts;
}

/* Appends the macro-expand p[0..len) ("%{" letter *DIGIT ["r"] *delimiter "}", already
 * validated). A DIGIT transformer that keeps at least as many parts as the value has is left
 * out: it keeps the whole value (§7.3), and libspf2 1.2.10 expands it wrongly (`%{d2}` of a
 * two-label domain does not give the domain). */
static void put_macro(const struct parse *ps, struct buf *out, const char *p, size_t len)
{
    size_t j = 3;
    long digits = 0;
    while (j < len && is_digit((unsigned char)p[j]) && digits < 100000)
        digits = digits * 10 + (p[j++] - '0');
    size_t k = j;
    if (k < len && (p[k] == 'r' || p[k] == 'R'))
        k++;
    const char *value = macro_value(ps->mv, p[2]);
    if (j == 3 || !value || (size_t)digits < macro_parts(value, p + k, len - 1 - k)) {
        buf_append(out, p, len);
        return;
    }
    buf_append(out, p, 3);
    buf_append(out, p + j, len - j);
}

/* Appends domain-spec text with its literal parts in lower case (macro letters keep their case:
 * upper case means URL-encoding). */
static void put_domain(const struct parse *ps, struct buf *out, const char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        if (p[i] == '%' && i + 1 < len && p[i + 1] == '{') {
            const char *end = memchr(p + i, '}', len - i);
            size_t mlen = end ? (size_t)(end - (p + i)) + 1 : len - i;
            put_macro(ps, out, p + i, mlen);
            i += mlen;
            continue;
        }
        char c = p[i];
        if (c == '%' && i + 1 < len) { /* "%%", "%_", "%-" */
            buf_append(out, p + i, 2);
            i += 2;
            continue;
        }
        c = (char)tolower((unsigned char)c);
        buf_append(out, &c, 1);
        i++;
    }
}

static bool ip4_network(const char *p, size_t len)
{
    /* qnum: 0-255 without leading zeros */
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        size_t s = i;
        while (i < len && is_digit((unsigned char)p[i]))
            i++;
        if (i == s || i - s > 3 || (p[s] == '0' && i - s > 1))
            return false;
        int v = 0;
        for (size_t k = s; k < i; k++)
            v = v * 10 + (p[k] - '0');
        if (v > 255)
            return false;
        parts++;
        if (parts < 4) {
            if (i >= len || p[i] != '.')
                return false;
            i++;
        }
    }
    return i == len;
}

static bool ip6_network(const char *p, size_t len)
{
    char tmp[INET6_ADDRSTRLEN + 8];
    struct in6_addr a;
    if (len == 0 || len >= sizeof tmp)
        return false;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, &a) == 1;
}

/* Splits "name:arg" / "name". */
static size_t name_len(struct term t)
{
    size_t i = 0;
    while (i < t.len && t.p[i] != ':' && t.p[i] != '/' && t.p[i] != '=')
        i++;
    return i;
}

static bool name_is(struct term t, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(t.p, want, n) == 0;
}

static int modifier(struct parse *ps, struct term t, size_t n, struct buf *redirect)
{
    /* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) */
    if (!is_alpha((unsigned char)t.p[0]))
        return fail(ps, "bad modifier name", t);
    for (size_t i = 1; i < n; i++)
        if (!is_alpha((unsigned char)t.p[i]) && !is_digit((unsigned char)t.p[i]) &&
            !strchr("-_.", t.p[i]))
            return fail(ps, "bad modifier name", t);
    const char *v = t.p + n + 1;
    size_t vlen = t.len - n - 1;
    bool ends_macro;
    if (name_is(t, n, "redirect") || name_is(t, n, "exp")) {
        bool redir = name_is(t, n, "redirect");
        if (++*(redir ? &ps->redirects : &ps->exps) > 1)
            return fail(ps, "modifier given twice", t);
        if (!domain_spec(v, vlen))
            return fail(ps, "bad domain-spec", t);
        if (redir) {
            buf_puts(redirect, " redirect=");
            put_domain(ps, redirect, v, vlen);
        }
        return 0;
    }
    if (!macro_string(v, vlen, &ends_macro))
        return fail(ps, "bad macro-string", t);
    return 0; /* unknown modifiers are ignored (§6) */
}

static int mechanism(struct parse *ps, struct term t, struct buf *out)
{
    char q = 0;
    if (strchr("+-?~", t.p[0]) && t.len > 0) {
        q = t.p[0];
        t.p++;
        t.len--;
    }
    size_t n = name_len(t);
    const char *arg = t.p + n;
    size_t alen = t.len - n;
    char qs[2] = {q, 0};

    if (name_is(t, n, "all")) {
        if (alen)
            return fail(ps, "'all' takes no argument", t);
        ps->has_all = true;
        buf_printf(out, " %sall", qs);
        return 0;
    }
    if (name_is(t, n, "include") || name_is(t, n, "exists")) {
        if (alen < 1 || arg[0] != ':' || !domain_spec(arg + 1, alen - 1))
            return fail(ps, "bad domain-spec", t);
        buf_printf(out, " %s%.*s:", qs, (int)n, t.p);
        put_domain(ps, out, arg + 1, alen - 1);
        return 0;
    }
    if (name_is(t, n, "ptr")) {
        if (alen && (arg[0] != ':' || !domain_spec(arg + 1, alen - 1)))
            return fail(ps, "bad domain-spec", t);
        /* evaluated by the DNS layer (spf.c), which sees the client address */
        buf_printf(out, " %sexists:", qs);
        size_t dlen = alen ? alen - 1 : 0;
        if (dlen > 1 && arg[alen - 1] == '.')
            dlen--;
        if (dlen)
            put_domain(ps, out, arg + 1, dlen);
        else
            buf_puts(out, "%{d}");
        buf_puts(out, SPF_PTR_SUFFIX);
        return 0;
    }
    if (name_is(t, n, "a") || name_is(t, n, "mx")) {
        int c4, c6;
        size_t dlen = alen;
        if (dual_cidr(arg, &dlen, &c4, &c6) < 0)
            return fail(ps, "bad CIDR length", t);
        const char *dom = NULL;
        size_t domlen = 0;
        if (dlen) {
            if (arg[0] != ':' || !domain_spec(arg + 1, dlen - 1))
                return fail(ps, "bad domain-spec", t);
            dom = arg + 1;
            domlen = dlen - 1;
        }
        int c = ps->v6 ? c6 : c4;
        buf_printf(out, " %s%.*s", qs, (int)n, t.p);
        if (c == 0) {
            buf_puts(out, ":");
            if (dom && domlen > 1 && dom[domlen - 1] == '.')
                domlen--;
            if (dom)
                put_domain(ps, out, dom, domlen);
            else
                buf_puts(out, "%{d}");
            buf_puts(out, SPF_ANY_SUFFIX);
            return 0;
        }
        if (dom) {
            buf_puts(out, ":");
            put_domain(ps, out, dom, domlen);
        }
        if (c > 0)
            buf_printf(out, ps->v6 ? "//%d" : "/%d", c);
        return 0;
    }
    if (name_is(t, n, "ip4") || name_is(t, n, "ip6")) {
        bool six = name_is(t, n, "ip6");
        if (alen < 2 || arg[0] != ':')
            return fail(ps, "bad network", t);
        const char *net = arg + 1;
        size_t nlen = alen - 1;
        int c = -1;
        const char *slash = memchr(net, '/', nlen);
        if (slash) {
            c = cidr_value(slash + 1, nlen - (size_t)(slash + 1 - net), six ? 128 : 32);
            if (c < 0)
                return fail(ps, "bad CIDR length", t);
            nlen = (size_t)(slash - net);
        }
        if (!(six ? ip6_network(net, nlen) : ip4_network(net, nlen)))
            return fail(ps, "bad network", t);
        if (six != ps->v6)
            return 0; /* never matches a client of the other family */
        if (c == 0)
            buf_printf(out,
                       six ? " %sip6:::/1 %sip6:8000::/1" : " %sip4:0.0.0.0/1 %sip4:128.0.0.0/1",
                       qs, qs);
        else
            buf_printf(out, " %s%.*s", qs, (int)t.len, t.p);
        return 0;
    }
    return fail(ps, "unknown mechanism", t);
}

int spf_record_prepare(const char *rec, size_t len, bool client_v6,
                       const struct spf_macro_values *mv, struct buf *out, char *err, size_t errlen)
{
    struct parse ps = {.mv = mv, .v6 = client_v6, .err = err, .errlen = errlen};
    struct buf redirect = {0};
    int rc = 0;
    struct term whole = {rec, len};
    if (!spf_is_record(rec, len))
        return fail(&ps, "not an SPF record", whole);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)rec[i];
        if (c != ' ' && (c < 0x21 || c > 0x7e))
            return fail(&ps, "control or non-ASCII character", whole);
    }
    buf_puts(out, "v=spf1");
    size_t i = 6;
    while (i < len && rc == 0) {
        while (i < len && rec[i] == ' ')
            i++;
        if (i >= len)
            break;
        size_t s = i;
        while (i < len && rec[i] != ' ')
            i++;
        struct term t = {rec + s, i - s};
        size_t n = name_len(t);
        if (n < t.len && t.p[n] == '=' && n > 0)
            rc = modifier(&ps, t, n, &redirect);
        else
            rc = mechanism(&ps, t, out);
    }
    if (rc == 0 && redirect.len && !ps.has_all)
        buf_append(out, redirect.data, redirect.len);
    buf_free(&redirect);
    return rc;
}
