/* Certificate chain verification with OpenSSL's X509 store: libetpan (GnuTLS) does the
 * handshake but checks nothing, so sluice checks the chain it hands over. */
#include "delivery/tls_verify.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

static int is_ip_literal(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

int tls_verify_chain(const unsigned char *const *ders, const size_t *lens, size_t n,
                     const char *host, const char *ca_file, char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "certificate verify failed: the server sent no certificate");
        return -1;
    }
    int rc = -1;
    X509 *leaf = NULL;
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!untrusted || !store || !ctx) {
        snprintf(err, errlen, "certificate verify failed: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = ders[i];
        X509 *c = d2i_X509(NULL, &p, (long)lens[i]);
        if (!c) {
            snprintf(err, errlen, "certificate verify failed: certificate %zu is not DER", i);
            goto out;
        }
        if (i == 0)
            leaf = c;
        else
            sk_X509_push(untrusted, c);
    }
    if ((ca_file ? X509_STORE_load_file(store, ca_file) : X509_STORE_set_default_paths(store)) !=
        1) {
        snprintf(err, errlen, "certificate verify failed: cannot load %s",
                 ca_file ? ca_file : "the system's CA certificates");
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        snprintf(err, errlen, "certificate verify failed: cannot set up the check");
        goto out;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    /* A CA file may hold the server's own self-signed certificate: trust it as an anchor. */
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    if (is_ip_literal(host))
        X509_VERIFY_PARAM_set1_ip_asc(param, host);
    else
        X509_VERIFY_PARAM_set1_host(param, host, 0);
    if (X509_verify_cert(ctx) == 1) {
        rc = 0;
    } else {
        int e = X509_STORE_CTX_get_error(ctx);
        snprintf(err, errlen, "certificate verify failed for %s: %s", host,
                 X509_verify_cert_error_string(e));
    }
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    return rc;
}
