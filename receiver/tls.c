/* TLS server context. Certificate and key problems are reported with the file named. */
#include "receiver/tls.h"

#include <openssl/err.h>
#include <stdio.h>

static void ssl_reason(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, reason, sizeof reason);
    ERR_clear_error();
    snprintf(err, errlen, "%s %s: %s", what, file, reason);
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"sluice", 6);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        ssl_reason(err, errlen, "cannot load TLS certificate", cert);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        ssl_reason(err, errlen, "cannot load TLS key", key);
    } else if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_reason(err, errlen, "TLS key does not match certificate", key);
    } else {
        return ctx;
    }
    SSL_CTX_free(ctx);
    return NULL;
}
