/* libFuzzer target: the PROXY protocol parser. Besides memory safety it checks that the parser
 * is incremental: a header decided on a prefix is decided the same way on any longer input,
 * so it cannot matter how the bytes were split across reads. */
#include "receiver/proxy_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static enum proxy_status parse_copy(const uint8_t *data, size_t n, struct proxy_header *h)
{
    /* An exact-size copy, so ASan sees any read past what has "arrived". */
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, data, n);
    const char *why = NULL;
    enum proxy_status st = proxy_parse(p, n, h, &why);
    free(p);
    if (st == PROXY_ERROR && (!why || !*why))
        abort();
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_header full;
    enum proxy_status st = parse_copy(data, size, &full);
    if (st == PROXY_DONE) {
        if (full.consumed == 0 || full.consumed > size || full.consumed > PROXY_HEADER_MAX)
            abort();
        if (!full.local && (!full.src_ip[0] || full.src_port < 0 || full.src_port > 65535))
            abort();
    }
    if (st == PROXY_NEED_MORE && size >= PROXY_HEADER_MAX)
        abort(); /* callers never buffer more than PROXY_HEADER_MAX */
    /* Every prefix: decided prefixes agree with the whole. */
    size_t limit = size < PROXY_HEADER_MAX + 8 ? size : PROXY_HEADER_MAX + 8;
    for (size_t k = 0; k < limit; k++) {
        struct proxy_header h;
        enum proxy_status sk = parse_copy(data, k, &h);
        if (sk == PROXY_ERROR && st != PROXY_ERROR)
            abort();
        if (sk == PROXY_DONE) {
            if (st != PROXY_DONE || h.consumed != full.consumed || h.local != full.local ||
                strcmp(h.src_ip, full.src_ip) != 0 || h.src_port != full.src_port)
                abort();
        }
        if (st == PROXY_DONE && k < full.consumed && sk != PROXY_NEED_MORE)
            abort();
    }
    return 0;
}
