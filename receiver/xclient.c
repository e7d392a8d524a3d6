/* XCLIENT attribute parsing: name=xtext pairs separated by spaces. Values end up in logs and in
 * the Received: header, so decoded values must be printable ASCII without spaces. */
#include "receiver/xclient.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* RFC 3461 §4 xtext: printable ASCII except '+' and '=', which appear as "+XX" (hex, upper case).
 * Returns 0 with the decoded text in out, or -1. */
static int xtext_decode(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            if (i + 2 >= n)
                return -1;
            unsigned v = 0;
            for (int k = 1; k <= 2; k++) {
                char h = in[i + k];
                if (h >= '0' && h <= '9')
                    v = v * 16 + (unsigned)(h - '0');
                else if (h >= 'A' && h <= 'F')
                    v = v * 16 + (unsigned)(h - 'A' + 10);
                else
                    return -1;
            }
            c = (unsigned char)v;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        }
        /* Decoded, the value must still be safe to print in a header. */
        if (c < 33 || c > 126)
            return -1;
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int unavailable(const char *v)
{
    return strcmp(v, "[UNAVAILABLE]") == 0 || strcmp(v, "[TEMPUNAVAIL]") == 0;
}

static int set_addr(struct xclient_attrs *a, const char *v)
{
    unsigned char bin[16];
    if (strncasecmp(v, "IPV6:", 5) == 0) {
        if (inet_pton(AF_INET6, v + 5, bin) != 1)
            return -1;
        inet_ntop(AF_INET6, bin, a->addr, sizeof a->addr);
    } else if (inet_pton(AF_INET, v, bin) == 1) {
        inet_ntop(AF_INET, bin, a->addr, sizeof a->addr);
    } else if (inet_pton(AF_INET6, v, bin) == 1) {
        inet_ntop(AF_INET6, bin, a->addr, sizeof a->addr);
    } else {
        return -1;
    }
    return 0;
}

static int set_port(struct xclient_attrs *a, const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 5 || strspn(v, "0123456789") != n)
        return -1;
    int p = 0;
    for (size_t i = 0; i < n; i++)
        p = p * 10 + (v[i] - '0');
    if (p > 65535)
        return -1;
    a->port = p;
    return 0;
}

int xclient_parse(const char *arg, struct xclient_attrs *a, const char **reply)
{
    memset(a, 0, sizeof *a);
    const char *p = arg;
    int any = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p) {
            *reply = "501 5.5.4 Syntax: XCLIENT attribute=value [attribute=value ...]";
            return -1;
        }
        size_t nlen = (size_t)(eq - p);
        char value[512];
        if (xtext_decode(eq + 1, len - nlen - 1, value, sizeof value) < 0) {
            *reply = "501 5.5.4 Bad XCLIENT attribute value: invalid xtext";
            return -1;
        }
        int na = unavailable(value);
#define IS(name) (nlen == strlen(name) && strncasecmp(p, name, nlen) == 0)
        if (IS("ADDR")) {
            a->addr_set = na ? 2 : 1;
            if (!na && set_addr(a, value) < 0) {
                *reply = "501 5.5.4 Bad XCLIENT ADDR syntax";
                return -1;
            }
        } else if (IS("PORT")) {
            a->port_set = na ? 2 : 1;
            if (!na && set_port(a, value) < 0) {
                *reply = "501 5.5.4 Bad XCLIENT PORT syntax";
                return -1;
            }
        } else if (IS("NAME")) {
            a->name_set = na ? 2 : 1;
            if (!na && strlen(value) >= sizeof a->name) {
                *reply = "501 5.5.4 Bad XCLIENT NAME syntax";
                return -1;
            }
            if (!na)
                memcpy(a->name, value, strlen(value) + 1); /* length checked above */
        } else if (IS("HELO")) {
            a->helo_set = na ? 2 : 1;
            if (!na && strlen(value) >= sizeof a->helo) {
                *reply = "501 5.5.4 Bad XCLIENT HELO syntax";
                return -1;
            }
            if (!na)
                memcpy(a->helo, value, strlen(value) + 1); /* length checked above */
        } else if (IS("PROTO")) {
            a->proto_set = na ? 2 : 1;
            if (!na && strcasecmp(value, "ESMTP") == 0)
                a->esmtp = 1;
            else if (!na && strcasecmp(value, "SMTP") != 0) {
                *reply = "501 5.5.4 Bad XCLIENT PROTO syntax";
                return -1;
            }
        } else if (IS("LOGIN") || IS("DESTADDR") || IS("DESTPORT")) {
            /* Accepted for compatibility with proxies that always send them; unused. */
        } else {
            *reply = "501 5.5.4 Bad XCLIENT attribute name";
            return -1;
        }
#undef IS
        any = 1;
        p += len;
    }
    if (!any) {
        *reply = "501 5.5.4 Syntax: XCLIENT attribute=value [attribute=value ...]";
        return -1;
    }
    return 0;
}
