/* The DATA reader: an incremental state machine that finds the one true end of data
 * (<CRLF>.<CRLF>, RFC 5321 §4.1.1.4), removes dot-stuffing exactly once, and records every
 * defect (bare CR/LF, NUL, over-long line, over-size) without ever ending early. This is what
 * makes SMTP smuggling impossible: no other byte sequence can end a message. */
#ifndef SLUICE_SMTP_DATA_H
#define SLUICE_SMTP_DATA_H

#include <stddef.h>

#include "core/buf.h"

enum data_defect {
    DATA_BARE_LF = 1 << 0,
    DATA_BARE_CR = 1 << 1,
    DATA_NUL = 1 << 2,
    DATA_LONG_LINE = 1 << 3,
    DATA_TOO_BIG = 1 << 4,
};

/* RFC 5321 §4.5.3.1.6: 1000 octets including CRLF, counted on the text line, i.e. after the
 * stuffed dot of §4.5.2 is removed (a 998-octet line starting with "." travels as 999). */
#define SMTP_TEXT_LINE_MAX 1000

struct data_reader {
    int state;
    size_t line_len;   /* octets of the current text line after unstuffing, CRLF excluded */
    size_t max_size;   /* content octets kept at most; more sets DATA_TOO_BIG */
    size_t received;   /* content octets seen after unstuffing, including discarded ones */
    unsigned defects;  /* enum data_defect bits */
    int raw;           /* BDAT chunks: no dot-unstuffing, no end marker, only the line checks */
    int normalize_lf;  /* a bare LF ends a line as CRLF would, except that it never makes the end */
    size_t normalized; /* bare LFs taken as CRLF */
    struct buf *out;   /* unstuffed content, CRLF line endings; owned by the caller */
};

/* normalize_lf: take a bare LF as the end of a line (stored as CRLF; the next line is unstuffed
 * as usual) instead of a defect; only CRLF "." CRLF ends the data either way. */
void data_reader_init(struct data_reader *r, struct buf *out, size_t max_size, int normalize_lf);
/* The same checks for BDAT chunks (RFC 3030): octets are taken as they are, dots included, and
 * nothing ends the data; the caller counts the chunk sizes and calls data_reader_end. */
void data_reader_init_raw(struct data_reader *r, struct buf *out, size_t max_size,
                          int normalize_lf);
/* The end of the last chunk: a CR left hanging is a bare CR; a last line without its CRLF gets
 * one, so the stored message is CRLF text as after DATA. */
void data_reader_end(struct data_reader *r);
/* Consumes bytes from p. Returns how many were consumed: all of n, or fewer when the end of
 * data was reached (then *done is set to 1 and the rest belongs to the next command). */
size_t data_reader_feed(struct data_reader *r, const char *p, size_t n, int *done);
/* The reply for a finished message with defects, or NULL when it has none. Sets *close when
 * the session must end after the reply (bare CR or LF: 550, as Postfix's
 * smtpd_forbid_bare_newline does; the session may say 521 instead). */
const char *data_reader_verdict(const struct data_reader *r, int *close);

#endif
