/* The header section of a message as received (CRLF lines), split into fields without
 * copying, for the checks that read headers (DKIM, DMARC's From) and for removing forged
 * ones. */
#ifndef SLUICE_AUTH_HEADERS_H
#define SLUICE_AUTH_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

struct hdr_field {
    size_t off;      /* offset of the field in the message */
    size_t len;      /* the whole field, folded lines and the final CRLF included */
    size_t name_len; /* bytes before the colon */
};

struct hdr_list {
    struct hdr_field *f;
    size_t n;
    size_t body_off; /* offset of the body (after the empty line), or the message length */
};

/* Splits data; the header section ends at the first empty line or at a line that is neither
 * a field nor a continuation. The caller frees l->f. */
void headers_parse(const char *data, size_t len, struct hdr_list *l);
bool header_is(const char *data, const struct hdr_field *f, const char *name);
/* The unfolded value (CRLFs removed, leading whitespace trimmed); caller frees. */
char *header_value(const char *data, const struct hdr_field *f);

#endif
