/* Checking the certificate chain an SMTP server presented after STARTTLS: trusted by the
 * system's CAs (or one CA file), valid now, and issued for the name sluice connected to. */
#ifndef SLUICE_TLS_VERIFY_H
#define SLUICE_TLS_VERIFY_H

#include <stddef.h>

/* ders[0..n) are the DER certificates, the server's own first. ca_file NULL: the system's
 * trust store; otherwise only the certificates in that PEM file (a pinned self-signed server
 * certificate counts as an anchor). host is a DNS name or an IP address literal. Returns 0, or
 * -1 with the reason in err ("certificate verify failed: unable to get local issuer
 * certificate"). */
int tls_verify_chain(const unsigned char *const *ders, const size_t *lens, size_t n,
                     const char *host, const char *ca_file, char *err, size_t errlen);

#endif
