/* Maildir path templates: "var/mail/{domain}/{user}" with {domain}, {user} (local part without
 * +label), {local} (whole local part, quoting removed), {address} (the whole recipient) and
 * {rule}. Values are lower-cased and
 * refused when they could leave the directory tree ('/', "..", leading '.', control bytes). */
#ifndef SLUICE_PATH_TEMPLATE_H
#define SLUICE_PATH_TEMPLATE_H

#include <stddef.h>

/* Checks the template's syntax and variable names at config load. */
int path_template_check(const char *tmpl, char *err, size_t errlen);
/* Expands tmpl for one recipient into out. Returns -1 with a reason in err when a value is
 * unsafe or the result does not fit. */
int path_template_expand(const char *tmpl, const char *rcpt, const char *rule, char *out,
                         size_t outlen, char *err, size_t errlen);

/* The same variables for an address ("{user}@example.test" for lmtp's rcpt): no directory
 * rule, but the result must be a valid address. */
int address_template_expand(const char *tmpl, const char *rcpt, const char *rule, char *out,
                            size_t outlen, char *err, size_t errlen);

#endif
