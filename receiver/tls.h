/* The server side of STARTTLS: an OpenSSL context with TLS 1.2 as the floor. */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

/* Returns a new context (free with SSL_CTX_free), or NULL with the reason in err. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen);

#endif
