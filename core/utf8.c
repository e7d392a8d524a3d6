/* UTF-8 validation by the table of RFC 3629 §4 and xtext (RFC 3461 §4). */
#include "core/utf8.h"

#include <stdio.h>
#include <string.h>

bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned lo = 0x80, hi = 0xBF, cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return false; /* continuation byte, C0/C1 lead (overlong) or F5..FF */
        }
        if (i + len > n || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        cp = cp << 6 | (s[i + 1] & 0x3F);
        for (size_t k = 2; k < len; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < 0xA0) /* C1 controls: as dangerous in a path or a header as C0 ones */
            return false;
        i += len;
    }
    return true;
}

bool utf8_non_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F') /* RFC 3461: upper-case hex only */
        return c - 'A' + 10;
    return -1;
}

int xtext_decode(const char *s, char *out, size_t outlen)
{
    size_t w = 0;
    for (; *s; s++) {
        int c = (unsigned char)*s;
        if (c == '+') {
            int h = hexval(s[1]), l = h < 0 ? -1 : hexval(s[2]);
            if (l < 0)
                return -1;
            c = h << 4 | l;
            s += 2;
            /* xtext carries US-ASCII text (RFC 3461 §4); a decoded CR or LF would end up as a
             * header line of its own in the DSN. */
            if (c < 0x20 || c >= 0x7f)
                return -1;
        } else if (c < '!' || c > '~' || c == '=') {
            return -1;
        }
        if (w + 1 >= outlen)
            return -1;
        out[w++] = (char)c;
    }
    out[w] = '\0';
    return (int)w;
}

int xtext_encode(const char *s, char *out, size_t outlen)
{
    size_t w = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[4];
        int n = c < '!' || c > '~' || c == '+' || c == '=' ? snprintf(tmp, sizeof tmp, "+%02X", c)
                                                           : snprintf(tmp, sizeof tmp, "%c", c);
        if (w + (size_t)n >= outlen)
            return -1;
        memcpy(out + w, tmp, (size_t)n);
        w += (size_t)n;
    }
    out[w] = '\0';
    return (int)w;
}
