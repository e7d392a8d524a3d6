/* The one reader of a message's header section (RFC 5322 §2.2, §3.6), used by everything
 * that looks at header fields: DKIM and DMARC (auth/), rule conditions, the Lua msg API and
 * event, notifications, DSNs, and the paths that remove forged fields (auth/, scan/). Every
 * consumer sees the same fields because none splits the header section itself.
 *
 * How the bytes are split, decided once here:
 * - A line ends at LF; a CR right before it belongs to the line end. SMTP input has CRLF only
 *   (the receiver refuses bare CR and LF); `sluice test` turns LF into CRLF.
 * - A field starts with a line "name *WSP :" where name is one or more printable US-ASCII
 *   characters other than ':' (ftext, §3.6.8). White space before the colon is the obsolete
 *   syntax of §4.5 and is accepted: "From : a@b" is a From field. Lines beginning with SP or
 *   HTAB that follow continue the field (folding, §2.2.3).
 * - An empty line ends the header section; the body follows it.
 * - Any other line also ends the header section, and the body starts AT that line: a line
 *   without a colon, a name with white space, control or 8-bit bytes in it, an empty name, a
 *   continuation line with no field before it, and any line with a NUL byte or a CR that is
 *   not part of its line end (a field's continuation line with one ends the field before it).
 *   Fields after such a line are body text for every reader, as for the mail readers that
 *   take such a line for the start of the body, so no check can look at another From than
 *   the others do.
 * - There is no length limit: a line is as long as its bytes.
 * A field never contains NUL or a bare CR, so its unfolded value is a C string without loss
 * and the same for every consumer. */
#ifndef SLUICE_HEADERS_H
#define SLUICE_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

struct hdr_field {
    size_t off;       /* offset of the field in the message */
    size_t len;       /* the whole field, folded lines and the final line end included */
    size_t name_len;  /* the name, without white space before the colon */
    size_t value_off; /* offset of the byte after the colon */
};

/* A cursor over the fields of msg[0, len). msg is borrowed and must outlive the reader. */
struct hdr_reader {
    const char *msg;
    size_t len;
    size_t pos;
    bool done;
};

void hdr_reader_init(struct hdr_reader *r, const char *msg, size_t len);
/* The next field into *f, or false at the end of the header section; from then on r->pos is
 * the offset of the body. */
bool hdr_reader_next(struct hdr_reader *r, struct hdr_field *f);

/* Every field at once, for the checks that go over them several times. */
struct hdr_list {
    struct hdr_field *f;
    size_t n;
    size_t body_off; /* offset of the body, or the message length when there is none */
};
/* Fills l; the caller frees l->f. */
void headers_parse(const char *msg, size_t len, struct hdr_list *l);

/* Whether field f of msg is called name (ASCII case-insensitive). */
bool header_is(const char *msg, const struct hdr_field *f, const char *name);
/* Appends f's unfolded value to out: the bytes after the colon with the line ends removed (the
 * white space of folding stays) and leading and trailing SP/HTAB trimmed. */
void header_unfold(const char *msg, const struct hdr_field *f, struct buf *out);
/* The same as a string the caller frees. */
char *header_value(const char *msg, const struct hdr_field *f);

/* Offset of the body: the length of the header section with the empty line that ends it. */
size_t headers_length(const char *msg, size_t len);
/* Finds the nth (0-based) field called name; appends its unfolded value to out. Returns true
 * when found. */
bool header_find(const char *msg, size_t len, const char *name, int nth, struct buf *out);
/* Removes every field called name, continuation lines included, from the header section of
 * msg; the body is untouched. Returns how many fields were removed. */
size_t headers_remove_named(struct buf *msg, const char *name);

/* Calls fn for the addr-spec of each mailbox in a From/To-style value ("Name <a@b>", "a@b",
 * "a@b (comment)", several separated by commas), in order, until fn returns false. An
 * address of outlen bytes or more is passed as "". Returns the number of mailboxes seen. */
typedef bool (*header_addr_fn)(const char *addr, void *arg);
int header_each_address(const char *value, header_addr_fn fn, void *arg);
/* The first addr-spec of value into out (outlen bytes); returns the number of mailboxes. */
int header_first_address(const char *value, char *out, size_t outlen);
/* The authors of msg: every mailbox of every From field, in order, each passed to fn as for
 * header_each_address. RFC 5322 allows one From field; a message with several is judged by
 * all of them everywhere (DMARC judges every author domain and never passes such a message,
 * the `from` condition holds when any author matches, msg:from() returns them all), so that
 * no reader can be shown one author while another is checked. Returns the number of
 * mailboxes. */
int headers_each_author(const char *msg, size_t len, header_addr_fn fn, void *arg);

#endif
