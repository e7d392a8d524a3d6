/* XCLIENT attribute parsing. */
#include "receiver/xclient.h"
#include "proxy_check.h"

static int ok(const char *arg, struct xclient_attrs *a)
{
    const char *reply = NULL;
    int rc = xclient_parse(arg, a, &reply);
    if (rc < 0)
        fprintf(stderr, "unexpected refusal of \"%s\": %s\n", arg, reply);
    return rc == 0;
}

static int refused(const char *arg, const char *code_part)
{
    struct xclient_attrs a;
    const char *reply = NULL;
    return xclient_parse(arg, &a, &reply) < 0 && reply && strstr(reply, code_part);
}

int main(void)
{
    struct xclient_attrs a;
    CHECK(ok("ADDR=192.0.2.7 PORT=4711 NAME=mail.example.org HELO=mx.example.org PROTO=ESMTP", &a));
    CHECK(a.addr_set == 1 && a.port_set == 1 && a.name_set == 1 && a.helo_set == 1);
    CHECK_STR(a.addr, "192.0.2.7");
    CHECK(a.port == 4711 && a.esmtp == 1);
    CHECK_STR(a.name, "mail.example.org");
    CHECK_STR(a.helo, "mx.example.org");

    CHECK(ok("addr=IPV6:2001:DB8::0:5 proto=smtp", &a));
    CHECK_STR(a.addr, "2001:db8::5");
    CHECK(a.proto_set == 1 && a.esmtp == 0);
    CHECK(ok("ADDR=2001:db8::9", &a));
    CHECK_STR(a.addr, "2001:db8::9");

    CHECK(ok("NAME=[UNAVAILABLE] ADDR=[TEMPUNAVAIL] HELO=[UNAVAILABLE]", &a));
    CHECK(a.name_set == 2 && a.addr_set == 2 && a.helo_set == 2 && a.port_set == 0);

    /* xtext: "+3D" is '=', "+2B" is '+'. */
    CHECK(ok("HELO=a+3Db+2Bc LOGIN=x DESTADDR=1.2.3.4 DESTPORT=25", &a));
    CHECK_STR(a.helo, "a=b+c");
    CHECK(ok("  ADDR=10.0.0.1   PORT=0  ", &a));
    CHECK(a.port == 0);

    CHECK(refused("", "501 5.5.4 Syntax"));
    CHECK(refused("   ", "501 5.5.4 Syntax"));
    CHECK(refused("ADDR", "501 5.5.4 Syntax"));
    CHECK(refused("=x", "501 5.5.4 Syntax"));
    CHECK(refused("FOO=bar", "attribute name"));
    CHECK(refused("ADDR=999.1.1.1", "ADDR"));
    CHECK(refused("ADDR=example.org", "ADDR"));
    CHECK(refused("ADDR=IPV6:1.2.3.4", "ADDR"));
    CHECK(refused("PORT=65536", "PORT"));
    CHECK(refused("PORT=-1", "PORT"));
    CHECK(refused("PORT=", "PORT"));
    CHECK(refused("PROTO=LMTP", "PROTO"));
    CHECK(refused("HELO=a+2", "xtext"));
    CHECK(refused("HELO=a+2g", "xtext"));
    CHECK(refused("HELO=a+0D+0AX-Injected:+20yes", "xtext")); /* CR LF smuggled as xtext */
    CHECK(refused("HELO=a+20b", "xtext"));                    /* decoded space */
    CHECK(refused("HELO=a=b", "xtext"));
    CHECK(refused("HELO=a\tb", "xtext"));
    char longname[400] = "NAME=";
    memset(longname + 5, 'a', 300);
    longname[305] = '\0';
    CHECK(refused(longname, "NAME"));
    return check_summary("test_xclient");
}
