/* Mail addresses as the envelope carries them: validation, splitting and the SES-style
 * "+label" convention. Pure functions; no allocation unless stated. */
#ifndef SLUICE_ADDRESS_H
#define SLUICE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/* Returns true when s is a syntactically valid RFC 5321 Mailbox ("local@domain", local part
 * dot-atom or quoted-string, domain a hostname or address literal, ASCII only). */
bool address_valid(const char *s);
/* As address_valid, with the RFC 6531 additions: well-formed UTF-8 (utf8_valid) in the local
 * part and U-label domains. */
bool address_valid_utf8(const char *s);
/* Returns a pointer to the domain part (after the last '@'), or NULL. */
const char *address_domain(const char *addr);
/* Copies the local part of addr into out (size outlen); returns its length or -1. */
int address_local(const char *addr, char *out, size_t outlen);
/* Copies the local part with RFC 5321 quoting removed ("a\\"b" -> a"b) into out; returns its
 * length or -1. */
int address_local_unquoted(const char *addr, char *out, size_t outlen);
/* Copies the local part without its "+label" into out; returns its length or -1. */
int address_user(const char *addr, char *out, size_t outlen);
/* Returns true when name is a syntactically valid domain (hostname labels, no literal). */
bool domain_valid(const char *name);
/* As domain_valid, also taking U-labels (well-formed UTF-8, compared as bytes). */
bool domain_valid_utf8(const char *name);
/* ASCII lower-casing in place. */
void ascii_lower(char *s);
/* True when domain equals parent, or (subdomains) is a strict subdomain of parent.
 * Case-insensitive. */
bool domain_matches(const char *domain, const char *parent, bool subdomains);
/* True when domain is one of the accepted domains (server.domains: "example.test" that domain,
 * ".example.test" its strict subdomains). Case-insensitive. */
bool domain_accepted(char *const *domains, size_t n, const char *domain);

#endif
