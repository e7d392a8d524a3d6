/* libopendkim turns the signer's public key (DER, from the DNS record) into an EVP_PKEY with
 * d2i_PUBKEY_bio() for every signature it verifies, and has no hook to be handed a decoded
 * key. OpenSSL 3.0 spends about 80 us in its decoder framework on each such call (measured
 * here for a 2048-bit RSA key), a tenth of a message's CPU with checks on, for keys that
 * change once in months.
 *
 * So the sluice executable defines d2i_PUBKEY_bio itself. Its definition takes the place of
 * libcrypto's for every caller in the process (ELF symbol interposition, what an LD_PRELOAD
 * library does), and forwards to libcrypto's (dlsym RTLD_NEXT) for anything it does not
 * cache. Decoding is a pure function of the bytes: keys read from memory BIOs are kept by
 * their DER bytes, and a key seen before is handed out as a new reference (EVP_PKEY_up_ref),
 * which the caller frees with EVP_PKEY_free exactly as it would a fresh one. The keys are
 * only read by verification, which OpenSSL allows from several threads at once; the table is
 * shared and guarded by one mutex held for a lookup or an insert, never for a decode. */
#include "auth/dkim_key_cache.h"
#include "core/hash.h"
#include "core/log.h"

#include <dlfcn.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Longer input is not a DKIM key anyone publishes (RSA 8192 is ~1.1 KB): not cached. */
#define MAX_DER 4096

struct key_slot {
    unsigned char *der; /* NULL when empty */
    size_t len;
    EVP_PKEY *key; /* the cache's own reference */
};

static struct key_slot slots[DKIM_KEY_CACHE_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long hits, misses;

typedef EVP_PKEY *(*d2i_fn)(BIO *, EVP_PKEY **);
static d2i_fn real_d2i;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real(void)
{
    real_d2i = (d2i_fn)dlsym(RTLD_NEXT, "d2i_PUBKEY_bio");
}

static void free_all(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < DKIM_KEY_CACHE_SLOTS; i++) {
        free(slots[i].der);
        EVP_PKEY_free(slots[i].key);
        memset(&slots[i], 0, sizeof slots[i]);
    }
    pthread_mutex_unlock(&lock);
}

static void register_exit(void)
{
    find_real();
    /* Registered after OpenSSL's own exit handler (it initialises on first use, earlier), so
     * this one runs first, while the library can still free keys. */
    atexit(free_all);
}

void dkim_key_cache_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_exit);
}

void dkim_key_cache_counts(unsigned long *h, unsigned long *m)
{
    pthread_mutex_lock(&lock);
    *h = hits;
    *m = misses;
    pthread_mutex_unlock(&lock);
}

EVP_PKEY *d2i_PUBKEY_bio(BIO *bp, EVP_PKEY **a)
{
    pthread_once(&real_once, find_real);
    if (!real_d2i) {
        log_msg(LOG_ERR, "dkim: libcrypto's d2i_PUBKEY_bio not found");
        return NULL;
    }
    char *data = NULL;
    long n =
        (a == NULL && bp && BIO_method_type(bp) == BIO_TYPE_MEM) ? BIO_get_mem_data(bp, &data) : 0;
    if (n <= 0 || n > MAX_DER || !data)
        return real_d2i(bp, a);

    const unsigned char *der = (const unsigned char *)data;
    size_t len = (size_t)n;
    struct key_slot *s = &slots[hash_fnv1a(HASH_FNV1A_INIT, der, len) % DKIM_KEY_CACHE_SLOTS];
    pthread_mutex_lock(&lock);
    if (s->der && s->len == len && memcmp(s->der, der, len) == 0) {
        EVP_PKEY *k = s->key;
        EVP_PKEY_up_ref(k);
        hits++;
        pthread_mutex_unlock(&lock);
        /* The bytes count as read, as after a decode. */
        unsigned char sink[512];
        while (BIO_read(bp, sink, sizeof sink) > 0)
            ;
        return k;
    }
    misses++;
    pthread_mutex_unlock(&lock);

    /* der points into the BIO, which the decode consumes: keep a copy first. */
    unsigned char *copy = malloc(len);
    if (!copy)
        return real_d2i(bp, a);
    memcpy(copy, der, len);
    EVP_PKEY *k = real_d2i(bp, NULL);
    if (!k) {
        free(copy);
        return NULL;
    }
    EVP_PKEY_up_ref(k);
    pthread_mutex_lock(&lock);
    free(s->der);
    EVP_PKEY_free(s->key);
    s->der = copy;
    s->len = len;
    s->key = k;
    pthread_mutex_unlock(&lock);
    return k;
}
