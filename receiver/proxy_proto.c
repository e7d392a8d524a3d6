/* PROXY protocol v1/v2 parsing. Strict where the spec is strict (exact separators, CRLF, no
 * leading zeros in ports), because whatever we accept here becomes the client address that
 * every later decision trusts. */
#include "receiver/proxy_proto.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char V2_SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                         0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
static const char V1_SIG[] = "PROXY ";

static enum proxy_status fail(const char **why, const char *reason)
{
    *why = reason;
    return PROXY_ERROR;
}

/* --- v1 ----------------------------------------------------------------------------------- */

/* Splits the next space-terminated (or last) field off *p; returns its length, 0 if empty. */
static size_t field(const char **p, const char *end, const char **start)
{
    *start = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    return (size_t)(*p - *start);
}

static int v1_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = v;
    return 0;
}

static int v1_addr(int family, const char *s, size_t n, char *out, size_t outlen)
{
    char tmp[64];
    unsigned char bin[16];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(family, tmp, bin) != 1)
        return -1;
    /* Re-format so that the session sees one canonical spelling of each address. */
    return inet_ntop(family, bin, out, (socklen_t)outlen) ? 0 : -1;
}

static enum proxy_status parse_v1(const unsigned char *buf, size_t len, struct proxy_header *h,
                                  const char **why)
{
    size_t limit = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
    const unsigned char *lf = memchr(buf, '\n', limit);
    if (!lf) {
        if (len >= PROXY_V1_MAX)
            return fail(why, "v1 header longer than 107 octets");
        /* A CR must be the last byte so far, or followed by LF. */
        const unsigned char *cr = memchr(buf, '\r', len);
        if (cr && cr != buf + len - 1)
            return fail(why, "v1 header has CR without LF");
        return PROXY_NEED_MORE;
    }
    if (lf == buf || lf[-1] != '\r')
        return fail(why, "v1 header ends with a bare LF");
    const char *p = (const char *)buf + strlen(V1_SIG);
    const char *end = (const char *)lf - 1; /* at the CR */
    for (const char *q = p; q < end; q++)
        if (*q < 0x20 || *q > 0x7e)
            return fail(why, "v1 header contains control characters");
    memset(h, 0, sizeof *h);
    h->version = 1;
    h->consumed = (size_t)(lf - buf) + 1;
    const char *f;
    size_t n = field(&p, end, &f);
    if (n == 7 && memcmp(f, "UNKNOWN", 7) == 0) {
        /* The spec: the receiver ignores anything after UNKNOWN and uses the real peer. */
        h->local = 1;
        h->family = AF_UNSPEC;
        return PROXY_DONE;
    }
    if (n == 4 && memcmp(f, "TCP4", 4) == 0)
        h->family = AF_INET;
    else if (n == 4 && memcmp(f, "TCP6", 4) == 0)
        h->family = AF_INET6;
    else
        return fail(why, "v1 header has an unknown protocol family");
    const char *parts[4];
    size_t lens[4];
    for (int i = 0; i < 4; i++) {
        if (p >= end || *p != ' ')
            return fail(why, "v1 header has too few fields");
        p++;
        lens[i] = field(&p, end, &parts[i]);
        if (lens[i] == 0)
            return fail(why, "v1 header has an empty field");
    }
    if (p != end)
        return fail(why, "v1 header has too many fields");
    if (v1_addr(h->family, parts[0], lens[0], h->src_ip, sizeof h->src_ip) < 0 ||
        v1_addr(h->family, parts[1], lens[1], h->dst_ip, sizeof h->dst_ip) < 0)
        return fail(why, "v1 header has an invalid address for its family");
    if (v1_port(parts[2], lens[2], &h->src_port) < 0 ||
        v1_port(parts[3], lens[3], &h->dst_port) < 0)
        return fail(why, "v1 header has an invalid port");
    return PROXY_DONE;
}

/* --- v2 ----------------------------------------------------------------------------------- */

static enum proxy_status parse_v2(const unsigned char *buf, size_t len, struct proxy_header *h,
                                  const char **why)
{
    if (len < 16)
        return PROXY_NEED_MORE; /* signature prefix already checked by the caller */
    int version = buf[12] >> 4, command = buf[12] & 0x0f;
    if (version != 2)
        return fail(why, "v2 header has an unsupported version");
    if (command > 1)
        return fail(why, "v2 header has an unknown command");
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (16 + body > PROXY_V2_MAX)
        return fail(why, "v2 header longer than the limit");
    int fam = buf[13];
    if (command == 1) {
        /* Checked before the body arrives, so a bad header fails fast. */
        if (fam == 0x11 && body < 12)
            return fail(why, "v2 header length too short for TCP over IPv4");
        if (fam == 0x21 && body < 36)
            return fail(why, "v2 header length too short for TCP over IPv6");
        if (fam != 0x11 && fam != 0x21)
            return fail(why, "v2 header has an unsupported address family or protocol");
    }
    if (len < 16 + body)
        return PROXY_NEED_MORE;
    memset(h, 0, sizeof *h);
    h->version = 2;
    h->consumed = 16 + body;
    if (command == 0) {
        /* LOCAL: health checks and the balancer's own connections; addresses are ignored. */
        h->local = 1;
        h->family = AF_UNSPEC;
        return PROXY_DONE;
    }
    /* TLVs after the addresses are skipped: we use none of them. */
    const unsigned char *a = buf + 16;
    if (fam == 0x11) {
        h->family = AF_INET;
        inet_ntop(AF_INET, a, h->src_ip, sizeof h->src_ip);
        inet_ntop(AF_INET, a + 4, h->dst_ip, sizeof h->dst_ip);
        h->src_port = a[8] << 8 | a[9];
        h->dst_port = a[10] << 8 | a[11];
    } else {
        h->family = AF_INET6;
        inet_ntop(AF_INET6, a, h->src_ip, sizeof h->src_ip);
        inet_ntop(AF_INET6, a + 16, h->dst_ip, sizeof h->dst_ip);
        h->src_port = a[32] << 8 | a[33];
        h->dst_port = a[34] << 8 | a[35];
    }
    return PROXY_DONE;
}

enum proxy_status proxy_parse(const unsigned char *buf, size_t len, struct proxy_header *h,
                              const char **why)
{
    if (len == 0)
        return PROXY_NEED_MORE;
    /* Decide the version from the first byte, then insist on the whole signature. */
    if (buf[0] == V2_SIG[0]) {
        size_t n = len < sizeof V2_SIG ? len : sizeof V2_SIG;
        if (memcmp(buf, V2_SIG, n) != 0)
            return fail(why, "bad PROXY v2 signature");
        if (len < sizeof V2_SIG)
            return PROXY_NEED_MORE;
        return parse_v2(buf, len, h, why);
    }
    size_t n = len < strlen(V1_SIG) ? len : strlen(V1_SIG);
    if (memcmp(buf, V1_SIG, n) != 0)
        return fail(why, "no PROXY protocol signature");
    if (len < strlen(V1_SIG))
        return PROXY_NEED_MORE;
    return parse_v1(buf, len, h, why);
}
