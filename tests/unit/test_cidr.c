/* CIDR parsing and matching. */
#include "core/cidr.h"
#include "proxy_check.h"

#include <sys/socket.h>

static bool in(const char *block, const char *ip)
{
    struct cidr c;
    const char *why;
    if (cidr_parse(block, &c, &why) < 0) {
        fprintf(stderr, "unexpected parse failure for %s: %s\n", block, why);
        return false;
    }
    return cidr_match(&c, ip);
}

static bool bad(const char *text)
{
    struct cidr c;
    const char *why = NULL;
    return cidr_parse(text, &c, &why) < 0 && why && *why;
}

int main(void)
{
    CHECK(in("127.0.0.1/32", "127.0.0.1"));
    CHECK(!in("127.0.0.1/32", "127.0.0.2"));
    CHECK(in("127.0.0.1", "127.0.0.1"));
    CHECK(in("10.0.0.0/8", "10.255.1.2"));
    CHECK(!in("10.0.0.0/8", "11.0.0.1"));
    CHECK(in("0.0.0.0/0", "203.0.113.9"));
    CHECK(!in("0.0.0.0/0", "2001:db8::1"));
    CHECK(in("192.168.4.0/22", "192.168.7.255"));
    CHECK(!in("192.168.4.0/22", "192.168.8.0"));
    CHECK(in("172.16.0.0/12", "172.31.0.1"));
    CHECK(!in("172.16.0.0/12", "172.32.0.1"));
    /* IPv4-mapped IPv6 peers match IPv4 blocks. */
    CHECK(in("127.0.0.0/8", "::ffff:127.0.0.5"));
    CHECK(in("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK(!in("2001:db8::/32", "2001:db9::1"));
    CHECK(in("::1/128", "::1"));
    CHECK(!in("::1/128", "127.0.0.1"));
    CHECK(in("fe80::/10", "febf::1"));
    CHECK(!in("fe80::/10", "fec0::1"));
    CHECK(in("::/0", "2001:db8::1"));
    CHECK(!in("10.0.0.0/8", "unknown"));
    CHECK(!in("10.0.0.0/8", ""));

    CHECK(bad(""));
    CHECK(bad("/8"));
    CHECK(bad("10.0.0.0/"));
    CHECK(bad("10.0.0.0/33"));
    CHECK(bad("10.0.0.0/-1"));
    CHECK(bad("10.0.0.0/8x"));
    CHECK(bad("10.0.0.1/8"));
    CHECK(bad("2001:db8::/129"));
    CHECK(bad("2001:db8::1/32"));
    CHECK(bad("example.com/32"));
    CHECK(bad("10.0.0/8"));
    CHECK(bad("10.0.0.0/0008"));

    struct cidr list[2];
    const char *why;
    CHECK(cidr_parse("127.0.0.1/32", &list[0], &why) == 0);
    CHECK(cidr_parse("2001:db8::/48", &list[1], &why) == 0);
    CHECK(list[1].family == AF_INET6 && list[1].prefix == 48);
    CHECK(cidr_list_match(list, 2, "2001:db8:0:1::5"));
    CHECK(cidr_list_match(list, 2, "127.0.0.1"));
    CHECK(!cidr_list_match(list, 2, "127.0.0.2"));
    CHECK(!cidr_list_match(list, 0, "127.0.0.1"));
    return check_summary("test_cidr");
}
