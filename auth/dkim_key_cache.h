/* Decoded DKIM public keys, kept so that libopendkim does not decode the same key for every
 * message (see dkim_key_cache.c for how, and why it has to be done this way). */
#ifndef SLUICE_AUTH_DKIM_KEY_CACHE_H
#define SLUICE_AUTH_DKIM_KEY_CACHE_H

#define DKIM_KEY_CACHE_SLOTS 64

/* Links the cache into the program and arranges for its keys to be freed at exit; call once
 * before the first verification (idempotent, thread-safe). */
void dkim_key_cache_init(void);
/* Decodes served from the cache and decodes done by libcrypto since start (for tests). */
void dkim_key_cache_counts(unsigned long *hits, unsigned long *misses);

#endif
