/* DATA reader state machine. Only CR LF "." CR LF ends the data; a bare LF or bare CR never
 * starts a new line, so "\n.\n", "\r.\r" and their mixes are plain content (and defects). */
#include "receiver/smtp_data.h"

enum {
    S_LINE_START, /* after CRLF (or at the start of data) */
    S_IN_LINE,
    S_CR,       /* saw CR inside a line */
    S_DOT,      /* line started with '.' */
    S_DOT_CR,   /* line is "." CR so far */
    S_AFTER_LF, /* after a bare LF taken as CRLF: a line start that can never end the data */
};

void data_reader_init(struct data_reader *r, struct buf *out, size_t max_size, int normalize_lf)
{
    *r = (struct data_reader){
        .state = S_LINE_START, .out = out, .max_size = max_size, .normalize_lf = normalize_lf};
}

void data_reader_init_raw(struct data_reader *r, struct buf *out, size_t max_size, int normalize_lf)
{
    data_reader_init(r, out, max_size, normalize_lf);
    r->raw = 1;
}

static void emit(struct data_reader *r, const char *p, size_t n)
{
    r->received += n;
    if (r->received > r->max_size) {
        r->defects |= DATA_TOO_BIG;
        return;
    }
    buf_append(r->out, p, n);
}

/* One ordinary content byte inside a line (not CR). */
static void content_byte(struct data_reader *r, char c)
{
    if (c == '\n' && r->normalize_lf) {
        emit(r, "\r\n", 2);
        r->normalized++;
        r->line_len = 0;
        r->state = S_AFTER_LF;
        return;
    }
    if (c == '\n')
        r->defects |= DATA_BARE_LF;
    else if (c == '\0')
        r->defects |= DATA_NUL;
    if (++r->line_len > SMTP_TEXT_LINE_MAX - 2)
        r->defects |= DATA_LONG_LINE;
    emit(r, &c, 1);
    r->state = S_IN_LINE;
}

size_t data_reader_feed(struct data_reader *r, const char *p, size_t n, int *done)
{
    *done = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        switch (r->state) {
        case S_LINE_START:
            r->line_len = 0;
            if (c == '.' && !r->raw) {
                /* Not counted: the 998-octet limit is on the text line, and a leading dot is
                 * either the stuffing (removed) or, for "..", counted as the next byte. */
                r->state = S_DOT;
            } else if (c == '\r') {
                r->state = S_CR;
            } else {
                content_byte(r, c);
            }
            break;
        case S_AFTER_LF:
            /* Unstuffed like any line, but "." CRLF here is content: the end of data is
             * CRLF "." CRLF and nothing else, so no mix of endings can smuggle one. */
            r->line_len = 0;
            if (c == '.' && !r->raw)
                r->state = S_IN_LINE;
            else if (c == '\r')
                r->state = S_CR;
            else
                content_byte(r, c);
            break;
        case S_DOT:
            if (c == '\r')
                r->state = S_DOT_CR;
            else
                content_byte(r, c); /* the stuffed dot is dropped */
            break;
        case S_DOT_CR:
            if (c == '\n') {
                *done = 1;
                return i + 1;
            }
            r->defects |= DATA_BARE_CR;
            emit(r, "\r", 1);
            r->line_len++;
            if (c == '\r')
                r->state = S_CR;
            else
                content_byte(r, c);
            break;
        case S_IN_LINE:
            if (c == '\r') {
                r->state = S_CR;
            } else {
                /* Fast path: copy a run of ordinary bytes at once. */
                size_t j = i;
                while (j < n && p[j] != '\r' && p[j] != '\n' && p[j] != '\0')
                    j++;
                if (j > i) {
                    r->line_len += j - i;
                    if (r->line_len > SMTP_TEXT_LINE_MAX - 2)
                        r->defects |= DATA_LONG_LINE;
                    emit(r, p + i, j - i);
                    i = j - 1;
                } else {
                    content_byte(r, c);
                }
            }
            break;
        case S_CR:
            if (c == '\n') {
                emit(r, "\r\n", 2);
                r->state = S_LINE_START;
            } else {
                r->defects |= DATA_BARE_CR;
                emit(r, "\r", 1);
                r->line_len++;
                if (c == '\r')
                    r->state = S_CR;
                else
                    content_byte(r, c);
            }
            break;
        }
    }
    return n;
}

void data_reader_end(struct data_reader *r)
{
    if (r->state == S_CR) {
        r->defects |= DATA_BARE_CR;
        emit(r, "\r\n", 2);
    } else if (r->state == S_IN_LINE) {
        emit(r, "\r\n", 2);
    }
    r->state = S_LINE_START;
}

const char *data_reader_verdict(const struct data_reader *r, int *close)
{
    *close = 0;
    if (r->defects & (DATA_BARE_LF | DATA_BARE_CR)) {
        *close = 1;
        return r->defects & DATA_BARE_LF ? "550 5.5.2 Error: bare <LF> received; message refused "
                                           "(only <CRLF> ends a line)"
                                         : "550 5.5.2 Error: bare <CR> received; message refused "
                                           "(only <CRLF> ends a line)";
    }
    if (r->defects & DATA_NUL)
        return "550 5.6.0 Error: message contains NUL bytes";
    if (r->defects & DATA_TOO_BIG)
        return "552 5.3.4 Error: message exceeds the size limit";
    if (r->defects & DATA_LONG_LINE)
        return "550 5.5.2 Error: message has a line longer than 998 octets (RFC 5321 4.5.3.1.6)";
    return NULL;
}
