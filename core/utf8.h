/* UTF-8 well-formedness (RFC 3629) and RFC 3461 xtext, as the SMTPUTF8 and DSN extensions
 * need them. Pure functions, no allocation. */
#ifndef SLUICE_UTF8_H
#define SLUICE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is well-formed UTF-8 without overlong forms, surrogates, code points
 * above U+10FFFF or C1 controls (U+0080..U+009F). ASCII bytes are not judged here. */
bool utf8_valid(const char *s, size_t n);
/* True when s holds a byte >= 0x80. */
bool utf8_non_ascii(const char *s);
/* Decodes RFC 3461 xtext ("+2B" hex escapes; printable ASCII '!'..'~' other than '+' and '='
 * as is) into out (size outlen). Returns the decoded length, or -1 on bad syntax, a decoded
 * control or non-ASCII byte, or when it does not fit. */
int xtext_decode(const char *s, char *out, size_t outlen);
/* Encodes s as xtext into out (size outlen); returns the length or -1 when it does not fit. */
int xtext_encode(const char *s, char *out, size_t outlen);

#endif
