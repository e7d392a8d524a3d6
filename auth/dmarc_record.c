/* The tag-value list of a DMARC record: "tag=value" pairs separated by ';' with optional
 * whitespace (RFC 7489 §6.4). */
#include "auth/dmarc_record.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *skip_wsp(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool dmarc_is_record(const char *s)
{
    const char *p = skip_wsp(s);
    if (*p != 'v')
        return false;
    p = skip_wsp(p + 1);
    if (*p != '=')
        return false;
    p = skip_wsp(p + 1);
    if (strncmp(p, "DMARC1", 6) != 0)
        return false;
    p = skip_wsp(p + 6);
    return *p == ';' || *p == '\0';
}

static char request(const char *v, size_t n)
{
    if (n == 4 && strncasecmp(v, "none", 4) == 0)
        return 'n';
    if (n == 10 && strncasecmp(v, "quarantine", 10) == 0)
        return 'q';
    if (n == 6 && strncasecmp(v, "reject", 6) == 0)
        return 'r';
    return 0;
}

/* rua= is a comma-separated list of URIs (RFC 3986, optionally "!size"); one with a scheme
 * ("mailto:x@y", "https://...") is enough for §6.6.3. */
static bool has_valid_uri(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t'))
            s++;
        size_t c = s;
        if (c < e && isalpha((unsigned char)v[c])) {
            while (c < e && (isalnum((unsigned char)v[c]) || strchr("+-.", v[c])))
                c++;
            if (c < e && v[c] == ':' && c + 1 < e)
                return true;
        }
        i++;
    }
    return false;
}

int dmarc_record_parse(const char *s, struct dmarc_record *r, const char **why)
{
    *r = (struct dmarc_record){
        .p = 0, .sp = 0, .adkim = 'r', .aspf = 'r', .pct = 100, .psd = 'u', .np = 0, .test = false};
    bool rua = false, p_bad = false;
    const char *p = s;
    while (*p) {
        p = skip_wsp(p);
        const char *name = p;
        while (*p && *p != '=' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t nlen = (size_t)(p - name);
        p = skip_wsp(p);
        const char *val = NULL;
        size_t vlen = 0;
        if (*p == '=') {
            val = p = skip_wsp(p + 1);
            while (*p && *p != ';')
                p++;
            vlen = (size_t)(p - val);
            while (vlen > 0 && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
                vlen--;
        }
        while (*p && *p != ';')
            p++;
        if (*p == ';')
            p++;
        if (!val)
            continue; /* an empty or broken part: nothing to apply */
#define IS(t) (nlen == strlen(t) && strncasecmp(name, t, nlen) == 0)
        if (IS("p")) {
            r->p = request(val, vlen);
            p_bad = r->p == 0;
        } else if (IS("sp")) {
            r->sp = request(val, vlen);
        } else if (IS("np")) {
            r->np = request(val, vlen);
        } else if (IS("adkim") || IS("aspf")) {
            char m = vlen == 1 ? (char)tolower((unsigned char)val[0]) : 0;
            if (m == 'r' || m == 's')
                *(IS("adkim") ? &r->adkim : &r->aspf) = m;
        } else if (IS("pct")) {
            char buf[8];
            if (vlen > 0 && vlen < sizeof buf && strspn(val, "0123456789") >= vlen) {
                memcpy(buf, val, vlen);
                buf[vlen] = '\0';
                int v = atoi(buf);
                if (v <= 100)
                    r->pct = v;
            }
        } else if (IS("psd")) {
            char m = vlen == 1 ? (char)tolower((unsigned char)val[0]) : 0;
            if (m == 'y' || m == 'n' || m == 'u')
                r->psd = m;
        } else if (IS("t")) {
            r->test = vlen == 1 && (val[0] == 'y' || val[0] == 'Y');
        } else if (IS("rua")) {
            rua = has_valid_uri(val, vlen);
        }
#undef IS
    }
    if (r->p == 0) {
        if (!rua) {
            *why = p_bad ? "invalid p= and no usable rua=" : "no p= and no usable rua=";
            return -1;
        }
        r->p = 'n'; /* §6.6.3: act as if p=none was retrieved */
    }
    return 0;
}
