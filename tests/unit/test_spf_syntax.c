/* The RFC 7208 grammar check and the libspf2 rewrite of SPF records (auth/spf_syntax.c), on
 * records as real domains publish them and on the errors the RFC names. The RFC 7208 suite
 * (tests/integration/test_spf_suite.py) covers the same through DNS. */
#include "auth/spf_syntax.h"
#include "check.h"
#include "core/buf.h"

#include <stdbool.h>

/* The libspf2 form of rec for a client of family v6, or NULL when rec is rejected. */
static const char *prepare(const char *rec, bool v6)
{
    static char out[1024];
    struct buf b = {0};
    char err[160];
    int rc = spf_record_prepare(rec, strlen(rec), v6, NULL, &b, err, sizeof err);
    snprintf(out, sizeof out, "%s", rc == 0 ? buf_cstr(&b) : "");
    buf_free(&b);
    return rc == 0 ? out : NULL;
}

/* The same with the macro values of a check of a@mail.example.com from 192.0.2.1, HELO
 * mx.example.net, for the record of d. */
static const char *prepare_for(const char *rec, const char *d)
{
    static char out[1024];
    struct spf_macro_values mv = {.s = "a@mail.example.com",
                                  .l = "a",
                                  .o = "mail.example.com",
                                  .d = d,
                                  .i = "192.0.2.1",
                                  .h = "mx.example.net",
                                  .v = "in-addr"};
    struct buf b = {0};
    char err[160];
    int rc = spf_record_prepare(rec, strlen(rec), false, &mv, &b, err, sizeof err);
    snprintf(out, sizeof out, "%s", rc == 0 ? buf_cstr(&b) : "");
    buf_free(&b);
    return rc == 0 ? out : NULL;
}

int main(void)
{
    /* RFC 7208 §7.3: a DIGIT transformer that keeps every part keeps the whole value; libspf2
     * mis-expands it, so it is left out. Fewer parts than the value has stay as written. */
    CHECK_STR(prepare_for("v=spf1 exists:%{d2}._m.example.com -all", "example.com"),
              "v=spf1 exists:%{d}._m.example.com -all");
    CHECK_STR(prepare_for("v=spf1 exists:%{d2}._m.example.com -all", "a.example.com"),
              "v=spf1 exists:%{d2}._m.example.com -all");
    CHECK_STR(prepare_for("v=spf1 exists:%{d9r}.%{o3}.%{o2}.x.example.com -all", "example.com"),
              "v=spf1 exists:%{dr}.%{o}.%{o2}.x.example.com -all");
    CHECK_STR(prepare_for("v=spf1 exists:%{i4}.%{i3}.%{v1}.%{h3}.%{l1}.x.example.com", "e.com"),
              "v=spf1 exists:%{i}.%{i3}.%{v}.%{h}.%{l}.x.example.com");
    /* with delimiters the parts are counted at them: "mail.example.com" has no '-' */
    CHECK_STR(prepare_for("v=spf1 exists:%{o1-}.%{o2.-}.x.example.com", "e.com"),
              "v=spf1 exists:%{o-}.%{o2.-}.x.example.com");
    CHECK_STR(prepare_for("v=spf1 exists:%%%{d2}.x.example.com", "example.com"),
              "v=spf1 exists:%%%{d}.x.example.com");

    /* records seen in the wild stay as they are */
    CHECK_STR(prepare("v=spf1 include:_spf.google.com ~all", false),
              "v=spf1 include:_spf.google.com ~all");
    CHECK_STR(
        prepare("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 mx a:mail.example.com -all", false),
        "v=spf1 ip4:192.0.2.0/24 mx a:mail.example.com -all");
    CHECK_STR(prepare("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 mx -all", true),
              "v=spf1 ip6:2001:db8::/32 mx -all");
    CHECK_STR(prepare("v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all", false),
              "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all");
    CHECK_STR(prepare("v=spf1 redirect=_spf.Example.COM", false),
              "v=spf1 redirect=_spf.example.com");
    CHECK_STR(prepare("V=SPF1 IP4:192.0.2.1 -ALL", false), "v=spf1 IP4:192.0.2.1 -all");
    CHECK_STR(prepare("v=spf1  a   -all ", false), "v=spf1 a -all");
    CHECK_STR(prepare("v=spf1 a:foo:bar/baz.example.com", false),
              "v=spf1 a:foo:bar/baz.example.com");
    CHECK_STR(prepare("v=spf1 a/24//64 mx:%{d}/26 -all", false), "v=spf1 a/24 mx:%{d}/26 -all");
    CHECK_STR(prepare("v=spf1 a/24//64 -all", true), "v=spf1 a//64 -all");
    CHECK_STR(prepare("v=spf1", false), "v=spf1");

    /* what libspf2 mishandles, rewritten */
    CHECK_STR(prepare("v=spf1 ip4:1.2.3.4/0 -all", false),
              "v=spf1 ip4:0.0.0.0/1 ip4:128.0.0.0/1 -all");
    CHECK_STR(prepare("v=spf1 -ip6:::/0", true), "v=spf1 -ip6:::/1 -ip6:8000::/1");
    CHECK_STR(prepare("v=spf1 a/0 -all", false), "v=spf1 a:%{d}" SPF_ANY_SUFFIX " -all");
    CHECK_STR(prepare("v=spf1 mx:Example.com.//0", true), "v=spf1 mx:example.com" SPF_ANY_SUFFIX);
    CHECK_STR(prepare("v=spf1 mx:example.com//0", false), "v=spf1 mx:example.com");
    CHECK_STR(prepare("v=spf1 redirect=b.example ~all", false), "v=spf1 ~all");
    CHECK_STR(prepare("v=spf1 exp=e.%{d} moo.cow-far_out=man:dog/cat ?all", false), "v=spf1 ?all");
    CHECK_STR(prepare("v=spf1 ptr:Example.Com -all", false),
              "v=spf1 exists:example.com" SPF_PTR_SUFFIX " -all");
    CHECK_STR(prepare("v=spf1 ?ptr", true), "v=spf1 ?exists:%{d}" SPF_PTR_SUFFIX);

    /* permerror: every syntax error RFC 7208 names */
    const char *bad[] = {
        "v=spf1 a:",                          /* empty domain-spec */
        "v=spf1 mx: -all",                    /* */
        "v=spf1 exists:",                     /* */
        "v=spf1 ptr:",                        /* */
        "v=spf1 include:",                    /* */
        "v=spf1 exp= -all",                   /* */
        "v=spf1 redirect=",                   /* */
        "v=spf1 exp=a.example exp=b.example", /* modifier twice */
        "v=spf1 redirect=a.example redirect=b.example",
        "v=spf1 a:%{x}.example.com",                /* bad macro letter */
        "v=spf1 a:%{d}%.example.com",               /* lone % */
        "v=spf1 a:%{l0}.example.com",               /* a DIGIT transformer of 0 (§7.3) */
        "v=spf1 a:foo.example.com%",                /* trailing % */
        "v=spf1 -all exp=%{r}.example.com",         /* c, r, t only in explanations */
        "v=spf1 -all foo=%abc",                     /* unknown modifier, bad macro-string */
        "v=spf1 a:1.2.3.4",                         /* numeric top label */
        "v=spf1 a:museum",                          /* no top label */
        "v=spf1 a:foo-bar",                         /* */
        "v=spf1 a:example.com:8080",                /* */
        "v=spf1 mx:example.-com",                   /* */
        "v=spf1 exists:mail.example.com/24",        /* exists takes no CIDR */
        "v=spf1 ip4:1.2.3.4/032",                   /* leading zero */
        "v=spf1 ip4:1.2.3.4/33",                    /* */
        "v=spf1 ip6:::1/129",                       /* */
        "v=spf1 a//129",                            /* */
        "v=spf1 ip4:1.2.3",                         /* */
        "v=spf1 ip4:192.168.001.1",                 /* */
        "v=spf1 ip6:1.2.3.4",                       /* */
        "v=spf1 ip4:",                              /* */
        "v=spf1 redirect:example.com",              /* a modifier written as a mechanism */
        "v=spf1 -all:foo",                          /* */
        "v=spf1 +",                                 /* */
        "v=spf1 -redirect=x.example",               /* qualified modifier */
        "v=spf1 1foo=bar",                          /* bad modifier name */
        "v=spf1 a:foo.example.com\x01",             /* control character */
        "v=spf1 a:\xef\xbb\xbfgarbage.example.net", /* non-ASCII */
        "v=spf1 ip4:1.2.3.4\n -all",                /* LF is no separator */
        "v=spf1 default=+",                         /* unknown modifier: fine, but... */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad - 1; i++) {
        if (prepare(bad[i], false) != NULL)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK(prepare(bad[i], false) == NULL);
    }
    CHECK(prepare("v=spf1 default=+", false) != NULL); /* ...the RFC ignores it */

    /* a NUL inside the record */
    struct buf b = {0};
    char err[160];
    CHECK_INT(
        spf_record_prepare("v=spf1 a:foo.example.com\0", 25, false, NULL, &b, err, sizeof err), -1);
    buf_free(&b);

    CHECK(spf_is_record("v=spf1", 6));
    CHECK(spf_is_record("V=Spf1 -all", 11));
    CHECK(!spf_is_record("v=spf10 -all", 12));
    CHECK(!spf_is_record("v=spf1-all", 10));
    CHECK(!spf_is_record("spf2.0/pra ~all", 15));
    return CHECK_DONE();
}
