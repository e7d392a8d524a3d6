/* HAProxy PROXY protocol v1 (text) and v2 (binary) header parser, as the receiving side of
 * https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt. Pure and stateless: call it with
 * every byte received so far; it never looks past the header, so SMTP bytes the client
 * pipelined behind it stay with the caller. */
#ifndef SLUICE_PROXY_PROTO_H
#define SLUICE_PROXY_PROTO_H

#include <stddef.h>

/* v1 headers are at most 107 octets including CRLF (the spec's own bound). */
#define PROXY_V1_MAX 107
/* v2: 16 fixed octets plus the address block and TLVs. The spec lets the length field say up
 * to 64 KiB; we refuse more than this, which fits TCP6 addresses plus generous TLVs. */
#define PROXY_V2_MAX 1024
/* Enough bytes to decide any header: callers never need to buffer more than this. */
#define PROXY_HEADER_MAX PROXY_V2_MAX

enum proxy_status { PROXY_NEED_MORE, PROXY_ERROR, PROXY_DONE };

struct proxy_header {
    int version;     /* 1 or 2 */
    int local;       /* 1: LOCAL (v2) or UNKNOWN (v1): use the real peer address */
    int family;      /* AF_INET / AF_INET6 when !local, else AF_UNSPEC */
    char src_ip[46]; /* numeric, the original client */
    char dst_ip[46];
    int src_port, dst_port;
    size_t consumed; /* header length; the bytes after it belong to the next protocol */
};

/* Parses the start of buf[0..len). PROXY_DONE fills *h; PROXY_ERROR sets *why to a static
 * reason; PROXY_NEED_MORE means the bytes so far are a valid prefix of a header. */
enum proxy_status proxy_parse(const unsigned char *buf, size_t len, struct proxy_header *h,
                              const char **why);

#endif
