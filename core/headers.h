/* Reading the RFC 5322 header block of a message as received: lookup by name (case-
 * insensitive), with folding undone. Pure; works on the raw bytes, no MIME parsing. */
#ifndef SLUICE_HEADERS_H
#define SLUICE_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Length of the header block including the empty line that ends it (the whole message when
 * there is no body). */
size_t headers_length(const char *msg, size_t len);
/* Finds the nth (0-based) header called name; appends its unfolded value (leading white space
 * removed, CRLF+WSP joined to WSP) to out. Returns true when found. */
bool header_find(const char *msg, size_t len, const char *name, int nth, struct buf *out);
/* Iterates the header block: starting at *pos (0 for the first), sets name and value (unfolded)
 * of the next header and advances *pos. Returns false at the end of the block. */
bool header_next(const char *msg, size_t len, size_t *pos, struct buf *name, struct buf *value);
/* Extracts the first addr-spec from a From/To-style header value ("Name <a@b>", "a@b",
 * "a@b (comment)") into out; returns the number of mailboxes seen (0 when none). */
int header_first_address(const char *value, char *out, size_t outlen);
/* Removes every header field called name (case-insensitive), continuation lines included, from
 * the header block of msg; the body is untouched. Returns how many fields were removed. */
size_t headers_remove_named(struct buf *msg, const char *name);

#endif
