/* DKIM body hashes (RFC 6376 3.4.3, 3.4.4 and 3.7), computed here instead of by libopendkim:
 * its relaxed body canonicalisation runs byte by byte through an internal string append, about
 * 60 instructions a byte, most of the cost of checking a message (docs/performance.md). Only
 * bodies in the form SMTP delivers them are hashed here: every line ends in CR LF and there is
 * no other CR or LF. For anything else the caller lets libopendkim hash the body, since it
 * treats bare CR and LF in ways of its own that verdicts must keep agreeing with. */
#ifndef SLUICE_AUTH_DKIM_BODY_H
#define SLUICE_AUTH_DKIM_BODY_H

#include <stdbool.h>
#include <stddef.h>

enum dkim_body_canon { DKIM_BODY_SIMPLE, DKIM_BODY_RELAXED };

#define DKIM_BODY_HASH_MAX 32 /* SHA-256 */

/* Hashes body (len bytes, the text after the header block) canonicalised as canon, with
 * SHA-1 when sha1 is true, else SHA-256, into out; *outlen gets the digest's length. Returns
 * false, writing nothing, when the body is not in SMTP form or the digest failed. */
bool dkim_body_hash(const char *body, size_t len, enum dkim_body_canon canon, bool sha1,
                    unsigned char out[DKIM_BODY_HASH_MAX], size_t *outlen);

#endif
