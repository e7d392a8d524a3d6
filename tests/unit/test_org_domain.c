/* dmarc_org_domain() against Debian's public suffix list: listed suffixes of one and two
 * labels, TLDs the list does not name (its default rule "*", RFC 7489 §3.2), wildcard and
 * exception rules (*.ck, !www.ck; *.kawasaki.jp, !city.kawasaki.jp), IDN TLDs as A-labels and
 * U-labels, case, a trailing dot, and what is not a domain name. */
#include "auth/org_domain.h"
#include "check.h"

static const char *org(const char *d)
{
    static char out[256];
    dmarc_org_domain(d, out, sizeof out);
    return out;
}

int main(void)
{
    CHECK(dmarc_org_domain_ready());

    /* listed suffixes */
    CHECK_STR(org("example.com"), "example.com");
    CHECK_STR(org("mail.example.com"), "example.com");
    CHECK_STR(org("a.b.c.example.com"), "example.com");
    CHECK_STR(org("mail.example.co.uk"), "example.co.uk");
    CHECK_STR(org("com"), "");
    CHECK_STR(org("co.uk"), "");

    /* unlisted TLDs: the default rule makes the TLD a public suffix */
    CHECK_STR(org("d1.example"), "d1.example");
    CHECK_STR(org("mail.d1.example"), "d1.example");
    CHECK_STR(org("mx.d1.example"), "d1.example");
    CHECK_STR(org("a.b.d1.example"), "d1.example");
    CHECK_STR(org("host.corp.internal-tld"), "corp.internal-tld");
    CHECK_STR(org("example"), "");

    /* wildcard and exception rules */
    CHECK_STR(org("x.b.ck"), "x.b.ck");
    CHECK_STR(org("mail.x.b.ck"), "x.b.ck");
    CHECK_STR(org("b.ck"), "");
    CHECK_STR(org("ck"), "");
    CHECK_STR(org("www.ck"), "www.ck");
    CHECK_STR(org("mail.www.ck"), "www.ck");
    CHECK_STR(org("foo.bar.kawasaki.jp"), "foo.bar.kawasaki.jp");
    CHECK_STR(org("bar.kawasaki.jp"), "");
    CHECK_STR(org("city.kawasaki.jp"), "city.kawasaki.jp");
    CHECK_STR(org("mail.city.kawasaki.jp"), "city.kawasaki.jp");

    /* IDN: A-labels match the list's U-label rules; U-labels come back as they were given */
    CHECK_STR(org("mail.example.xn--fiqs8s"), "example.xn--fiqs8s");
    CHECK_STR(org("xn--fiqs8s"), "");
    CHECK_STR(org("mail.xn--bcher-kva.xn--fiqs8s"), "xn--bcher-kva.xn--fiqs8s");
    CHECK_STR(org("mail.example.\xe4\xb8\xad\xe5\x9b\xbd"), "example.\xe4\xb8\xad\xe5\x9b\xbd");
    CHECK_STR(org("mail.xn--bcher-kva.example"), "xn--bcher-kva.example");

    /* case and the root's dot */
    CHECK_STR(org("MAIL.Example.COM"), "example.com");
    CHECK_STR(org("mail.d1.example."), "d1.example");
    CHECK_STR(org("d1.example."), "d1.example");
    CHECK_STR(org("MX.D1.Example."), "d1.example");
    CHECK_STR(org("example."), "");
    CHECK_STR(org("com."), "");

    /* not domain names */
    CHECK_STR(org(""), "");
    CHECK_STR(org("."), "");
    CHECK_STR(org(".d1.example"), "");
    CHECK_STR(org("a..d1.example"), "");
    CHECK_STR(org("d1.example.."), "");
    CHECK_STR(org(NULL), "");

    /* an output buffer too small gives "", never a truncated name */
    char small[10];
    dmarc_org_domain("mail.example.co.uk", small, sizeof small);
    CHECK_STR(small, "");
    char fits[14];
    dmarc_org_domain("mail.example.co.uk", fits, sizeof fits);
    CHECK_STR(fits, "example.co.uk");

    return CHECK_DONE();
}
