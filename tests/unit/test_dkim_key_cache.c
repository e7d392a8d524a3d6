/* The DKIM key cache that stands in for libcrypto's d2i_PUBKEY_bio (auth/dkim_key_cache.c):
 * the same DER gives the same, working key from the cache; garbage, other BIO types and the
 * reuse form (a != NULL) go to libcrypto and are not cached; the references handed out are
 * the caller's to free (LeakSanitizer checks this in the sanitizer run). */
#include "auth/dkim_key_cache.h"
#include "check.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

static EVP_PKEY *decode(const unsigned char *der, int len)
{
    BIO *b = BIO_new_mem_buf(der, len);
    EVP_PKEY *k = d2i_PUBKEY_bio(b, NULL);
    CHECK(BIO_pending(b) == 0 || k == NULL); /* the bytes are consumed either way */
    BIO_free(b);
    return k;
}

/* Signs with priv and verifies with pub: the key from the cache must really work. */
static int verifies(EVP_PKEY *priv, EVP_PKEY *pub)
{
    static const unsigned char msg[] = "header hash input";
    unsigned char sig[512];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    int ok = EVP_DigestSignInit(s, NULL, EVP_sha256(), NULL, priv) == 1 &&
             EVP_DigestSign(s, sig, &siglen, msg, sizeof msg) == 1 &&
             EVP_DigestVerifyInit(v, NULL, EVP_sha256(), NULL, pub) == 1 &&
             EVP_DigestVerify(v, sig, siglen, msg, sizeof msg) == 1;
    EVP_MD_CTX_free(s);
    EVP_MD_CTX_free(v);
    return ok;
}

int main(void)
{
    dkim_key_cache_init();
    unsigned long h0, m0, h, m;
    dkim_key_cache_counts(&h0, &m0);

    EVP_PKEY *priv = EVP_RSA_gen(2048);
    CHECK(priv != NULL);
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(priv, &der);
    CHECK(len > 0);

    EVP_PKEY *a = decode(der, len);
    EVP_PKEY *b = decode(der, len);
    CHECK(a && b);
    CHECK(a == b); /* the second came from the cache */
    dkim_key_cache_counts(&h, &m);
    CHECK_INT(m - m0, 1);
    CHECK_INT(h - h0, 1);
    CHECK(verifies(priv, b));
    EVP_PKEY_free(a); /* the cache and b still hold references */
    CHECK(verifies(priv, b));
    EVP_PKEY_free(b);

    /* A copy of the bytes elsewhere in memory hits too: the key is the content. */
    unsigned char *copy = malloc((size_t)len);
    memcpy(copy, der, (size_t)len);
    EVP_PKEY *c = decode(copy, len);
    CHECK(c != NULL && verifies(priv, c));
    EVP_PKEY_free(c);
    dkim_key_cache_counts(&h, &m);
    CHECK_INT(h - h0, 2);

    /* Garbage: no key, and nothing kept (a second try decodes again). */
    copy[len / 2] ^= 0xff;
    copy[0] = 0x00;
    CHECK(decode(copy, len) == NULL);
    CHECK(decode(copy, len) == NULL);
    dkim_key_cache_counts(&h, &m);
    CHECK_INT(m - m0, 3);
    CHECK_INT(h - h0, 2);
    free(copy);

    /* Other kinds of BIO and the reuse form go straight to libcrypto. */
    BIO *mem = BIO_new(BIO_s_mem());
    BIO *chain = BIO_push(BIO_new(BIO_f_buffer()), mem);
    BIO_write(chain, der, len);
    BIO_flush(chain);
    EVP_PKEY *d = d2i_PUBKEY_bio(chain, NULL);
    CHECK(d != NULL && verifies(priv, d));
    EVP_PKEY_free(d);
    BIO_free_all(chain);
    BIO *r = BIO_new_mem_buf(der, len);
    EVP_PKEY *e = NULL;
    CHECK(d2i_PUBKEY_bio(r, &e) != NULL && e != NULL);
    BIO_free(r);
    CHECK(verifies(priv, e));
    EVP_PKEY_free(e);
    dkim_key_cache_counts(&h, &m);
    CHECK_INT(m - m0, 3);
    CHECK_INT(h - h0, 2);

    OPENSSL_free(der);
    EVP_PKEY_free(priv);
    return CHECK_DONE();
}
