/* libopendkim's own DKIM body hash, the one auth/dkim_body.c stands in for: a verification
 * handle is fed one made-up signature and the body, and the hash it computed is read back.
 * The key lookup is answered "no key" at once, so nothing leaves the process. For the unit
 * test and the fuzzer that hold sluice's hashes against it. */
#ifndef SLUICE_TESTS_OPENDKIM_BODY_HASH_H
#define SLUICE_TESTS_OPENDKIM_BODY_HASH_H

#include <opendkim/dkim.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static DKIM_CBSTAT opendkim_ref_no_key(DKIM *dk, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
    (void)dk;
    (void)sig;
    (void)buf;
    (void)buflen;
    return DKIM_CBSTAT_NOTFOUND;
}

/* Writes libopendkim's hash of body (len bytes) to out (32 bytes room); returns its length, or
 * 0 when libopendkim produced none (it refuses some bodies, e.g. relaxed without a final CR LF).
 * lib comes from opendkim_ref_lib(); the caller closes it with dkim_close(). */
static size_t opendkim_ref_hash(DKIM_LIB *lib, const char *body, size_t len, bool relaxed,
                                bool sha1, unsigned char *out)
{
    DKIM_STAT st;
    DKIM *dk = dkim_verify(lib, (const unsigned char *)"ref", NULL, &st);
    if (!dk)
        return 0;
    char sig[256];
    snprintf(sig, sizeof sig,
             "DKIM-Signature: v=1; a=%s; c=simple/%s; d=example.com; s=x; h=from; bh=AAAA; "
             "b=AAAA",
             sha1 ? "rsa-sha1" : "rsa-sha256", relaxed ? "relaxed" : "simple");
    static const char from[] = "From: a@example.com";
    st = dkim_header(dk, (u_char *)sig, strlen(sig));
    if (st == DKIM_STAT_OK)
        st = dkim_header(dk, (u_char *)from, sizeof from - 1);
    if (st == DKIM_STAT_OK)
        st = dkim_eoh(dk);
    if (st == DKIM_STAT_OK && len)
        st = dkim_body(dk, (u_char *)body, len);
    (void)dkim_eom(dk, NULL); /* fails: there is no key; the body hash is done by then */
    size_t n = 0;
    DKIM_SIGINFO **sigs;
    int nsigs = 0;
    void *hh, *bh;
    size_t hhlen, bhlen;
    if (st == DKIM_STAT_OK && dkim_getsiglist(dk, &sigs, &nsigs) == DKIM_STAT_OK && nsigs == 1 &&
        dkim_sig_gethashes(sigs[0], &hh, &hhlen, &bh, &bhlen) == DKIM_STAT_OK && bhlen <= 32) {
        memcpy(out, bh, bhlen);
        n = bhlen;
    }
    dkim_free(dk);
    return n;
}

static DKIM_LIB *opendkim_ref_lib(void)
{
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    if (lib)
        dkim_set_key_lookup(lib, opendkim_ref_no_key);
    return lib;
}

#endif
