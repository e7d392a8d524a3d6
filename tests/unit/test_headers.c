/* The header section reader (core/headers.h): field splitting, folding, obsolete "Name :",
 * where the body starts on a malformed line, empty values, long lines, NUL and 8-bit bytes,
 * LF-only and CR-only line ends, and the authors of messages with several From fields. */
#include "core/headers.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

/* Splits msg (len bytes) and renders "name=value|name=value|#body_off". */
static char *render_n(const char *msg, size_t len)
{
    struct hdr_list l;
    struct buf out = {0};
    headers_parse(msg, len, &l);
    for (size_t i = 0; i < l.n; i++) {
        buf_append(&out, msg + l.f[i].off, l.f[i].name_len);
        buf_puts(&out, "=");
        char *v = header_value(msg, &l.f[i]);
        buf_puts(&out, v);
        free(v);
        buf_puts(&out, "|");
    }
    buf_printf(&out, "#%zu", l.body_off);
    if (headers_length(msg, len) != l.body_off)
        buf_puts(&out, " (headers_length differs)");
    free(l.f);
    return (char *)buf_cstr(&out);
}

static char *render(const char *msg)
{
    return render_n(msg, strlen(msg));
}

#define CHECK_SPLIT(msg, want)                                                                     \
    do {                                                                                           \
        char *r_ = render(msg);                                                                    \
        CHECK_STR(r_, want);                                                                       \
        free(r_);                                                                                  \
    } while (0)

static void test_basic_and_folding(void)
{
    CHECK_SPLIT("From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n",
                "From=a@example.com|Subject=hi|#36");
    CHECK_SPLIT("Subject: one\r\n two\r\n\tthree \r\n\r\nb", "Subject=one two\tthree|#31");
    /* A white-space-only continuation line is folding white space, not the end (§4.2). */
    CHECK_SPLIT("Subject: a\r\n \r\n b\r\n\r\n", "Subject=a  b|#21");
    CHECK_SPLIT("From:\r\n a@example.com\r\n\r\n", "From=a@example.com|#25");
    CHECK_SPLIT("", "#0");
    CHECK_SPLIT("\r\nFrom: a@b\r\n", "#2");
    /* No empty line: all header, no body; the last line may lack its CRLF. */
    CHECK_SPLIT("From: a@b\r\nTo: c@d", "From=a@b|To=c@d|#18");
}

static void test_obsolete_space_before_colon(void)
{
    CHECK_SPLIT("From : a@example.com\r\n\r\n", "From=a@example.com|#24");
    CHECK_SPLIT("From\t \t: a@example.com\r\n\r\n", "From=a@example.com|#26");
    const char *m = "From : a@example.com\r\nSubject\t:x\r\n\r\n";
    struct buf v = {0};
    CHECK(header_find(m, strlen(m), "From", 0, &v));
    CHECK_STR(buf_cstr(&v), "a@example.com");
    buf_reset(&v);
    CHECK(header_find(m, strlen(m), "subject", 0, &v));
    CHECK_STR(buf_cstr(&v), "x");
    buf_free(&v);
}

static void test_malformed_line_starts_body(void)
{
    /* The colon-less line and everything after it is body, for every reader. */
    const char *m = "From: a@example.com\r\nX-Junk no colon\r\nFrom: b@evil.example\r\n\r\nbody";
    CHECK_SPLIT(m, "From=a@example.com|#21");
    struct buf v = {0};
    CHECK(!header_find(m, strlen(m), "From", 1, &v));
    buf_free(&v);
    CHECK_SPLIT("no colon\r\nFrom: b@example.net\r\n\r\n", "#0");
    CHECK_SPLIT(" leading: continuation\r\nFrom: a@b\r\n\r\n", "#0");
    CHECK_SPLIT(": empty name\r\n\r\n", "#0");
    CHECK_SPLIT("Subject: x\r\nX Y: space in name\r\nFrom: a@b\r\n\r\n", "Subject=x|#12");
    CHECK_SPLIT("Fr\xc3\xb6m: a@b\r\nFrom: c@d\r\n\r\n", "#0");
    CHECK_SPLIT("Fr\x01om: a@b\r\n\r\n", "#0");
}

static void test_values(void)
{
    CHECK_SPLIT("From:\r\nSubject: \r\nX-A:\t \r\n\r\n", "From=|Subject=|X-A=|#28");
    /* 8-bit bytes in a value are kept (RFC 6532). */
    CHECK_SPLIT("Subject: \xc3\xa9t\xc3\xa9\r\n\r\n", "Subject=\xc3\xa9t\xc3\xa9|#18");
    /* Colons in the value are the value's. */
    CHECK_SPLIT("Date: Mon, 1 Jan 2026 10:00:00 +0000\r\n\r\n",
                "Date=Mon, 1 Jan 2026 10:00:00 +0000|#40");
}

static void test_nul_and_cr(void)
{
    static const char nul_first[] = "Subject: x\r\nFrom: a@b\0c\r\nTo: d@e\r\n\r\n";
    char *r = render_n(nul_first, sizeof nul_first - 1);
    CHECK_STR(r, "Subject=x|#12");
    free(r);
    /* A continuation line with a NUL ends the field before it. */
    static const char nul_cont[] = "From: a@b\r\n x\0y\r\nTo: d@e\r\n\r\n";
    r = render_n(nul_cont, sizeof nul_cont - 1);
    CHECK_STR(r, "From=a@b|#11");
    free(r);
    /* A bare CR is no line end and no header byte. */
    CHECK_SPLIT("From: a@b\rTo: c@d\r\n\r\n", "#0");
    CHECK_SPLIT("Subject: x\r\nFrom: a@b\rTo: c@d\r\n\r\n", "Subject=x|#12");
    CHECK_SPLIT("From: a@b\r\r\nX: y\r\n\r\n", "#0");
}

static void test_lf_only(void)
{
    CHECK_SPLIT("From: a@b\nSubject: one\n two\n\nbody\n", "From=a@b|Subject=one two|#29");
    CHECK_SPLIT("From : a@b\nJunk\nFrom: c@d\n\n", "From=a@b|#11");
}

static void test_long_lines(void)
{
    size_t n = 200000;
    struct buf m = {0};
    buf_puts(&m, "Subject: ");
    for (size_t i = 0; i < n; i++)
        buf_append(&m, i % 1000 == 999 ? "\r\n " : "x", i % 1000 == 999 ? 3 : 1);
    buf_puts(&m, "\r\nFrom: a@example.com\r\n\r\nbody");
    struct hdr_list l;
    headers_parse(m.data, m.len, &l);
    CHECK_INT(l.n, 2);
    CHECK_INT(l.body_off, m.len - 4);
    if (l.n == 2) {
        char *v = header_value(m.data, &l.f[0]);
        CHECK_INT(strlen(v), n - 1); /* each fold leaves one space; the last one is trailing */
        CHECK(header_is(m.data, &l.f[1], "FROM"));
        free(v);
    }
    free(l.f);
    /* A name as long as the line. */
    buf_reset(&m);
    for (size_t i = 0; i < n; i++)
        buf_puts(&m, "N");
    buf_puts(&m, ": v\r\n\r\n");
    headers_parse(m.data, m.len, &l);
    CHECK_INT(l.n, 1);
    CHECK_INT(l.n ? l.f[0].name_len : 0, n);
    free(l.f);
    buf_free(&m);
}

static void check_remove(const char *in, const char *name, size_t removed, const char *want)
{
    struct buf b = {0};
    buf_puts(&b, in);
    CHECK_INT(headers_remove_named(&b, name), removed);
    CHECK_STR(buf_cstr(&b), want);
    buf_free(&b);
}

static void test_remove(void)
{
    check_remove("X-Spam : yes\r\n more\r\nFrom: a@b\r\nx-spam:no\r\n\r\nX-Spam: body\r\n",
                 "X-Spam", 2, "From: a@b\r\n\r\nX-Spam: body\r\n");
    /* Past a malformed line it is body, and stays. */
    check_remove("From: a@b\r\njunk\r\nX-Spam: yes\r\n\r\n", "X-Spam", 0,
                 "From: a@b\r\njunk\r\nX-Spam: yes\r\n\r\n");
    check_remove("X-Spam: yes", "X-Spam", 1, "");
}

struct collected {
    char all[256];
};

static bool collect(const char *addr, void *arg)
{
    struct collected *c = arg;
    strncat(c->all, addr, sizeof c->all - strlen(c->all) - 2);
    strcat(c->all, ";");
    return true;
}

static bool stop_first(const char *addr, void *arg)
{
    collect(addr, arg);
    return false;
}

static void test_authors(void)
{
    const char *m = "From: A <a@one.example>, b@two.example (B)\r\nTo: t@x\r\nFrom : "
                    "\"x@fake\" <c@three.example>\r\n\r\nFrom: d@body.example\r\n";
    struct collected c = {""};
    CHECK_INT(headers_each_author(m, strlen(m), collect, &c), 3);
    CHECK_STR(c.all, "a@one.example;b@two.example;c@three.example;");
    struct collected first = {""};
    CHECK_INT(headers_each_author(m, strlen(m), stop_first, &first), 3);
    CHECK_STR(first.all, "a@one.example;");
    char addr[64];
    CHECK_INT(header_first_address("Name <x@y.example>, z@w", addr, sizeof addr), 2);
    CHECK_STR(addr, "x@y.example");
    CHECK_INT(header_first_address("no address", addr, sizeof addr), 0);
    CHECK_STR(addr, "");
    /* Junk before the second From: one author. */
    const char *j = "From: a@one.example\r\nJunk\r\nFrom: b@two.example\r\n\r\n";
    struct collected cj = {""};
    CHECK_INT(headers_each_author(j, strlen(j), collect, &cj), 1);
    CHECK_STR(cj.all, "a@one.example;");
}

int main(void)
{
    test_basic_and_folding();
    test_obsolete_space_before_colon();
    test_malformed_line_starts_body();
    test_values();
    test_nul_and_cr();
    test_lf_only();
    test_long_lines();
    test_remove();
    test_authors();
    return CHECK_DONE();
}
