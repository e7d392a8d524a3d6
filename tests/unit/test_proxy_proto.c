/* PROXY protocol v1/v2 parser: valid headers, every malformed case, and incremental feeding. */
#include "receiver/proxy_proto.h"
#include "proxy_check.h"

#include <stdlib.h>
#include <sys/socket.h>

static const unsigned char SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* Builds a v2 header: ver_cmd, fam, declared body length, then body bytes. */
static size_t v2(unsigned char *out, int ver_cmd, int fam, size_t declared,
                 const unsigned char *body, size_t blen)
{
    memcpy(out, SIG, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(declared >> 8);
    out[15] = (unsigned char)declared;
    if (blen)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

static enum proxy_status parse(const void *buf, size_t len, struct proxy_header *h,
                               const char **why)
{
    *why = NULL;
    return proxy_parse(buf, len, h, why);
}

static void expect_error(const void *buf, size_t len, const char *reason_part, int line)
{
    struct proxy_header h;
    const char *why;
    enum proxy_status st = parse(buf, len, &h, &why);
    check_total++;
    if (st != PROXY_ERROR || !why || !strstr(why, reason_part)) {
        check_failures++;
        fprintf(stderr, "line %d: expected error containing \"%s\", got status %d (%s)\n", line,
                reason_part, (int)st, why ? why : "no reason");
    }
}
#define EXPECT_ERROR(buf, len, part) expect_error(buf, len, part, __LINE__)

/* Feeds buf in two pieces split at every position, and byte by byte: every proper prefix must
 * ask for more, and the whole must give the same result as a single read. */
static void every_split(const unsigned char *buf, size_t len, size_t header_len)
{
    struct proxy_header whole, part;
    const char *why;
    CHECK(parse(buf, len, &whole, &why) == PROXY_DONE);
    CHECK(whole.consumed == header_len);
    for (size_t cut = 0; cut < header_len; cut++) {
        /* The bytes so far are a prefix: a fresh buffer of exactly cut bytes, so ASan catches
         * any read past what has "arrived". */
        unsigned char *prefix = malloc(cut ? cut : 1);
        memcpy(prefix, buf, cut);
        enum proxy_status st = parse(prefix, cut, &part, &why);
        free(prefix);
        check_total++;
        if (st != PROXY_NEED_MORE) {
            check_failures++;
            fprintf(stderr, "prefix of %zu/%zu bytes: status %d (%s)\n", cut, header_len, (int)st,
                    why ? why : "");
        }
    }
    unsigned char *copy = malloc(len);
    memcpy(copy, buf, len);
    CHECK(parse(copy, len, &part, &why) == PROXY_DONE);
    CHECK(part.consumed == whole.consumed && part.src_port == whole.src_port);
    CHECK_STR(part.src_ip, whole.src_ip);
    free(copy);
}

static void test_v1(void)
{
    struct proxy_header h;
    const char *why;
    const char *hdr = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\n";
    CHECK(parse(hdr, strlen(hdr), &h, &why) == PROXY_DONE);
    CHECK(h.version == 1 && h.family == AF_INET && !h.local);
    CHECK_STR(h.src_ip, "192.0.2.10");
    CHECK_STR(h.dst_ip, "198.51.100.1");
    CHECK(h.src_port == 56324 && h.dst_port == 25);
    CHECK(h.consumed == strlen(hdr));

    const char *six = "PROXY TCP6 2001:DB8::0:1 2001:db8::2 65535 0\r\n";
    CHECK(parse(six, strlen(six), &h, &why) == PROXY_DONE);
    CHECK(h.family == AF_INET6);
    CHECK_STR(h.src_ip, "2001:db8::1"); /* canonical spelling */
    CHECK(h.src_port == 65535 && h.dst_port == 0);

    const char *unk = "PROXY UNKNOWN ffff::1 whatever\r\n";
    CHECK(parse(unk, strlen(unk), &h, &why) == PROXY_DONE);
    CHECK(h.local && h.family == AF_UNSPEC && h.consumed == strlen(unk));
    CHECK(parse("PROXY UNKNOWN\r\n", 15, &h, &why) == PROXY_DONE && h.local);

    /* Pipelined SMTP after the header is not consumed. */
    const char *piped = "PROXY TCP4 192.0.2.10 198.51.100.1 1 25\r\nEHLO x\r\n";
    CHECK(parse(piped, strlen(piped), &h, &why) == PROXY_DONE);
    CHECK(h.consumed == strlen(piped) - strlen("EHLO x\r\n"));

    every_split((const unsigned char *)piped, strlen(piped), h.consumed);
    every_split((const unsigned char *)six, strlen(six), strlen(six));

    /* The longest TCP header, and an UNKNOWN one of exactly 107 octets, are legal. */
    const char *longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK(parse(longest, strlen(longest), &h, &why) == PROXY_DONE);
    char unk107[PROXY_V1_MAX];
    memset(unk107, 'x', sizeof unk107);
    memcpy(unk107, "PROXY UNKNOWN ", 14);
    memcpy(unk107 + PROXY_V1_MAX - 2, "\r\n", 2);
    CHECK(parse(unk107, sizeof unk107, &h, &why) == PROXY_DONE && h.consumed == PROXY_V1_MAX);

    char big[200];
    memset(big, 'A', sizeof big);
    memcpy(big, "PROXY TCP4 ", 11);
    EXPECT_ERROR(big, sizeof big, "longer than 107");
    EXPECT_ERROR(big, PROXY_V1_MAX, "longer than 107");
    CHECK(parse(big, PROXY_V1_MAX - 1, &h, &why) == PROXY_NEED_MORE);

    EXPECT_ERROR("EHLO x\r\n", 8, "no PROXY protocol signature");
    EXPECT_ERROR("PROXy ", 6, "no PROXY protocol signature");
    EXPECT_ERROR("proxy TCP4", 10, "no PROXY protocol signature");
    EXPECT_ERROR("X", 1, "no PROXY protocol signature");
    EXPECT_ERROR("PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", 32, "unknown protocol family");
    EXPECT_ERROR("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n", 32, "unknown protocol family");
    EXPECT_ERROR("PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", 33, "unknown protocol family");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", 30, "too few fields");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", 34, "too many fields");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n", 33, "empty field");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", 33, "too many fields");
    EXPECT_ERROR("PROXY TCP4 ::1 1.2.3.4 1 2\r\n", 28, "invalid address");
    EXPECT_ERROR("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 28, "invalid address");
    EXPECT_ERROR("PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n", 30, "invalid address");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", 36, "invalid port");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", 33, "invalid port");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", 33, "invalid port");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 1 2x\r\n", 33, "invalid port");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", 31, "bare LF");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX", 32, "CR without LF");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n", 32, "control characters");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4\r1.2.3.4 1 2\r\n", 32, "control characters");
    EXPECT_ERROR("PROXY TCP4 1.2.3.4\r1.2.3.4", 26, "CR without LF");
    /* Truncated headers are not errors by themselves: the timeout decides. */
    CHECK(parse("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r", 31, &h, &why) == PROXY_NEED_MORE);
    CHECK(parse("PRO", 3, &h, &why) == PROXY_NEED_MORE);
    CHECK(parse("", 0, &h, &why) == PROXY_NEED_MORE);
}

static void test_v2(void)
{
    unsigned char buf[2048], body[1100];
    struct proxy_header h;
    const char *why;

    static const unsigned char tcp4[12] = {192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0, 25};
    size_t n = v2(buf, 0x21, 0x11, 12, tcp4, 12);
    CHECK(parse(buf, n, &h, &why) == PROXY_DONE);
    CHECK(h.version == 2 && h.family == AF_INET && !h.local && h.consumed == 28);
    CHECK_STR(h.src_ip, "192.0.2.10");
    CHECK_STR(h.dst_ip, "198.51.100.1");
    CHECK(h.src_port == 56324 && h.dst_port == 25);
    every_split(buf, n, 28);

    /* TCP6 with TLVs (skipped) and pipelined SMTP behind it. */
    memset(body, 0, 36);
    body[0] = 0x20;
    body[1] = 0x01;
    body[2] = 0x0d;
    body[3] = 0xb8;
    body[15] = 0x07;
    body[31] = 0x01;
    body[32] = 0x30;
    body[33] = 0x39;
    body[35] = 25;
    static const unsigned char tlv[] = {0x04, 0x00, 0x03, 'a', 'b', 'c'}; /* PP2_TYPE_NOOP */
    memcpy(body + 36, tlv, sizeof tlv);
    memcpy(body + 36 + sizeof tlv, "EHLO x\r\n", 8);
    n = v2(buf, 0x21, 0x21, 36 + sizeof tlv, body, 36 + sizeof tlv + 8);
    CHECK(parse(buf, n, &h, &why) == PROXY_DONE);
    CHECK(h.family == AF_INET6 && h.consumed == 16 + 36 + sizeof tlv);
    CHECK_STR(h.src_ip, "2001:db8::7");
    CHECK_STR(h.dst_ip, "::1");
    CHECK(h.src_port == 12345 && h.dst_port == 25);
    every_split(buf, n, h.consumed);

    /* LOCAL: addresses ignored, any family, body skipped. */
    n = v2(buf, 0x20, 0x00, 0, NULL, 0);
    CHECK(parse(buf, n, &h, &why) == PROXY_DONE);
    CHECK(h.local && h.consumed == 16);
    n = v2(buf, 0x20, 0x11, 12, tcp4, 12);
    CHECK(parse(buf, n, &h, &why) == PROXY_DONE && h.local && h.consumed == 28);
    every_split(buf, n, 28);

    /* Larger than the minimum address block is fine (TLVs). */
    memset(body, 0, sizeof body);
    memcpy(body, tcp4, 12);
    n = v2(buf, 0x21, 0x11, PROXY_V2_MAX - 16, body, PROXY_V2_MAX - 16);
    CHECK(parse(buf, n, &h, &why) == PROXY_DONE && h.consumed == PROXY_V2_MAX);

    /* Malformed. */
    n = v2(buf, 0x21, 0x11, 12, tcp4, 12);
    buf[3] = 0x0b;
    EXPECT_ERROR(buf, 4, "bad PROXY v2 signature");
    EXPECT_ERROR(buf, n, "bad PROXY v2 signature");
    buf[3] = 0x0a;
    buf[11] = 0x00;
    EXPECT_ERROR(buf, n, "bad PROXY v2 signature");
    EXPECT_ERROR("\r\n\r\nQUIT\r\n", 10, "bad PROXY v2 signature");

    n = v2(buf, 0x11, 0x11, 12, tcp4, 12);
    EXPECT_ERROR(buf, n, "unsupported version");
    n = v2(buf, 0x31, 0x11, 12, tcp4, 12);
    EXPECT_ERROR(buf, 16, "unsupported version");
    n = v2(buf, 0x22, 0x11, 12, tcp4, 12);
    EXPECT_ERROR(buf, n, "unknown command");
    n = v2(buf, 0x2f, 0x11, 12, tcp4, 12);
    EXPECT_ERROR(buf, 16, "unknown command");

    static const int bad_fams[] = {0x00, 0x01, 0x10, 0x12, 0x22, 0x31, 0x32, 0x13, 0x41, 0xff};
    for (size_t i = 0; i < sizeof bad_fams / sizeof bad_fams[0]; i++) {
        n = v2(buf, 0x21, bad_fams[i], 216, body, 216);
        EXPECT_ERROR(buf, n, "unsupported address family");
    }

    n = v2(buf, 0x21, 0x11, 11, tcp4, 11);
    EXPECT_ERROR(buf, n, "too short for TCP over IPv4");
    EXPECT_ERROR(buf, 16, "too short for TCP over IPv4");
    n = v2(buf, 0x21, 0x21, 35, body, 35);
    EXPECT_ERROR(buf, n, "too short for TCP over IPv6");
    n = v2(buf, 0x21, 0x21, 12, tcp4, 12); /* a TCP4 body labelled TCP6 */
    EXPECT_ERROR(buf, n, "too short for TCP over IPv6");

    n = v2(buf, 0x21, 0x11, PROXY_V2_MAX - 15, body, 0);
    EXPECT_ERROR(buf, n, "longer than the limit");
    n = v2(buf, 0x21, 0x11, 0xffff, body, 0);
    EXPECT_ERROR(buf, n, "longer than the limit");
    n = v2(buf, 0x20, 0x00, 0xffff, body, 0);
    EXPECT_ERROR(buf, n, "longer than the limit");

    /* Truncated: declared length not yet there. */
    n = v2(buf, 0x21, 0x21, 36, body, 20);
    CHECK(parse(buf, n, &h, &why) == PROXY_NEED_MORE);
    CHECK(parse(SIG, 5, &h, &why) == PROXY_NEED_MORE);
}

int main(void)
{
    test_v1();
    test_v2();
    return check_summary("test_proxy_proto");
}
