/* libFuzzer target: DKIM body hashing (auth/dkim_body.c) against libopendkim's own. The first
 * byte picks the canonicalisation and digest, the rest is the body. Whenever sluice hashes a
 * body itself, libopendkim must compute the very same hash; bodies sluice refuses are the ones
 * it leaves to libopendkim. */
#include "../tools/opendkim_body_hash.h"
#include "auth/dkim_body.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static DKIM_LIB *lib;
    if (!lib && !(lib = opendkim_ref_lib()))
        abort();
    if (size < 1)
        return 0;
    bool relaxed = data[0] & 1, sha1 = data[0] & 2;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    unsigned char got[DKIM_BODY_HASH_MAX], ref[32];
    size_t glen = 0;
    if (!dkim_body_hash(body, len, relaxed ? DKIM_BODY_RELAXED : DKIM_BODY_SIMPLE, sha1, got,
                        &glen))
        return 0;
    size_t rlen = opendkim_ref_hash(lib, body, len, relaxed, sha1, ref);
    if (rlen != glen || memcmp(got, ref, glen) != 0)
        abort();
    return 0;
}
