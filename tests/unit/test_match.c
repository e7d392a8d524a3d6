/* Recipient conditions with SES semantics (rules/ruleset.h), the address helpers
 * (core/address.h) and Maildir path templates (actions/path_template.h). */
#include "check.h"
#include "actions/path_template.h"
#include "core/address.h"
#include "rules/ruleset.h"

#include <stdbool.h>
#include <string.h>

/* Parses cond (which must be valid) and tells whether addr matches it. */
static bool cond_matches(const char *cond, const char *addr)
{
    struct rcpt_cond c;
    char err[256];
    if (rcpt_cond_parse(cond, &c, err, sizeof err) < 0) {
        CHECK(!"condition should parse");
        return false;
    }
    bool m = rcpt_cond_match(&c, addr);
    rcpt_cond_free(&c);
    return m;
}

static bool cond_valid(const char *cond)
{
    struct rcpt_cond c;
    char err[256] = "";
    int rc = rcpt_cond_parse(cond, &c, err, sizeof err);
    if (rc == 0) {
        rcpt_cond_free(&c);
        return true;
    }
    CHECK(strstr(err, "recipient condition") != NULL); /* the error names what is wrong */
    return false;
}

static void ses_conditions(void)
{
    /* user@domain: that address and user+anything@domain. */
    CHECK(cond_matches("user@example.test", "user@example.test"));
    CHECK(cond_matches("user@example.test", "user+x@example.test"));
    CHECK(cond_matches("user@example.test", "user+a+b@example.test"));
    CHECK(cond_matches("user@example.test", "User@Example.TEST"));
    CHECK(cond_matches("user@example.test", "USER+News@EXAMPLE.test"));
    CHECK(cond_matches("User@Example.Test", "user@example.test"));
    CHECK(!cond_matches("user@example.test", "userx@example.test"));
    CHECK(!cond_matches("user@example.test", "use@example.test"));
    CHECK(!cond_matches("user@example.test", "x+user@example.test"));
    CHECK(!cond_matches("user@example.test", "other@example.test"));
    CHECK(!cond_matches("user@example.test", "user@sub.example.test"));
    CHECK(!cond_matches("user@example.test", "user@example.test.org"));
    CHECK(!cond_matches("user@example.test", "user-x@example.test"));
    CHECK(cond_matches("user+tag@example.test", "user+tag@example.test"));
    CHECK(!cond_matches("user+tag@example.test", "user@example.test"));
    /* domain: every address at that domain, not its subdomains. */
    CHECK(cond_matches("example.test", "a@example.test"));
    CHECK(cond_matches("example.test", "a+b@EXAMPLE.TEST"));
    CHECK(cond_matches("Example.TEST", "a@example.test"));
    CHECK(!cond_matches("example.test", "a@sub.example.test"));
    CHECK(!cond_matches("example.test", "a@notexample.test"));
    CHECK(!cond_matches("example.test", "a@example.test.org"));
    CHECK(!cond_matches("example.test", "a@test"));
    /* .domain: every subdomain, not the domain itself. */
    CHECK(cond_matches(".example.test", "a@sub.example.test"));
    CHECK(cond_matches(".example.test", "a@deep.Sub.EXAMPLE.test"));
    CHECK(!cond_matches(".example.test", "a@example.test"));
    CHECK(!cond_matches(".example.test", "a@badexample.test"));
    CHECK(!cond_matches(".example.test", "a@sub.example.test.org"));
    CHECK(!cond_matches(".example.test", "a@.example.test"));
    /* Malformed conditions are config errors. */
    CHECK(cond_valid("user@example.test"));
    CHECK(cond_valid(".example.test"));
    CHECK(!cond_valid(""));
    CHECK(!cond_valid("."));
    CHECK(!cond_valid("..example.test"));
    CHECK(!cond_valid("not a domain"));
    CHECK(!cond_valid("user@"));
    CHECK(!cond_valid("@example.test"));
    CHECK(!cond_valid("a..b@example.test"));
    CHECK(!cond_valid("example..test"));
    CHECK(!cond_valid("-example.test"));
}

static void rule_without_conditions(void)
{
    struct rule r = {0};
    CHECK(rule_matches_rcpt(&r, "anyone@anywhere.test"));
    struct rcpt_cond conds[2];
    char err[128];
    CHECK_INT(rcpt_cond_parse("alice@example.test", &conds[0], err, sizeof err), 0);
    CHECK_INT(rcpt_cond_parse(".other.test", &conds[1], err, sizeof err), 0);
    r.rcpts = conds;
    r.nrcpts = 2;
    CHECK(rule_matches_rcpt(&r, "alice+x@example.test"));
    CHECK(rule_matches_rcpt(&r, "bob@a.other.test"));
    CHECK(!rule_matches_rcpt(&r, "bob@example.test"));
    CHECK(!rule_matches_rcpt(&r, "bob@other.test"));
    rcpt_cond_free(&conds[0]);
    rcpt_cond_free(&conds[1]);
}

static void addresses(void)
{
    CHECK(address_valid("a@example.test"));
    CHECK(address_valid("first.last@example.test"));
    CHECK(address_valid("a+b-c_d=e@example.test"));
    CHECK(address_valid("\"a b\"@example.test"));
    CHECK(address_valid("\"a\\\"b\"@example.test"));
    CHECK(address_valid("\"a>b\"@example.test"));
    CHECK(address_valid("\"a@b\"@example.test"));
    CHECK(address_valid("a@[192.0.2.1]"));
    CHECK(address_valid("a@[IPv6:2001:db8::1]"));
    CHECK(address_valid("a@x_y.example.test"));
    CHECK(!address_valid("a"));
    CHECK(!address_valid("a@"));
    CHECK(!address_valid("@example.test"));
    CHECK(!address_valid("a..b@example.test"));
    CHECK(!address_valid(".a@example.test"));
    CHECK(!address_valid("a.@example.test"));
    CHECK(!address_valid("a b@example.test"));
    CHECK(!address_valid("a@-x.test"));
    CHECK(!address_valid("a@x-.test"));
    CHECK(!address_valid("a@x..test"));
    CHECK(!address_valid("a@example.test."));
    CHECK(!address_valid("a@[not literal]"));
    CHECK(!address_valid("caf\xc3\xa9@example.test"));
    CHECK(!address_valid("\"tab\tx\"@example.test"));
    CHECK(!address_valid("\"unterminated@example.test"));
    CHECK(!address_valid("\"a\"b\"@example.test"));
    char local[80];
    memset(local, 'x', 64);
    strcpy(local + 64, "@example.test");
    CHECK(address_valid(local)); /* 64 octets: the maximum local part */
    memset(local, 'x', 65);
    strcpy(local + 65, "@example.test");
    CHECK(!address_valid(local));
    char label[100];
    memset(label, 'd', 64);
    strcpy(label + 64, ".test");
    CHECK(!domain_valid(label)); /* labels have at most 63 octets */
    label[63] = '.';
    strcpy(label + 64, "test");
    CHECK(domain_valid(label));

    char out[64];
    CHECK_INT(address_user("user+tag@example.test", out, sizeof out), 4);
    CHECK_STR(out, "user");
    CHECK_INT(address_user("user@example.test", out, sizeof out), 4);
    CHECK_STR(out, "user");
    CHECK_INT(address_user("a+b+c@example.test", out, sizeof out), 1);
    CHECK_STR(out, "a");
    CHECK_INT(address_user("+tag@example.test", out, sizeof out), 4);
    CHECK_STR(out, "+tag"); /* no user part to strip to */
    CHECK_INT(address_user("\"a+b\"@example.test", out, sizeof out), 1);
    CHECK_STR(out, "a");
    CHECK_INT(address_user("no-at-sign", out, sizeof out), -1);

    CHECK_INT(address_local_unquoted("\"a\\\"b\"@example.test", out, sizeof out), 3);
    CHECK_STR(out, "a\"b");
    CHECK_INT(address_local_unquoted("\"x y\"@example.test", out, sizeof out), 3);
    CHECK_STR(out, "x y");
    CHECK_INT(address_local_unquoted("\"a@b\"@example.test", out, sizeof out), 3);
    CHECK_STR(out, "a@b");
    CHECK_INT(address_local_unquoted("plain@example.test", out, sizeof out), 5);
    CHECK_STR(out, "plain");
    CHECK_INT(address_local_unquoted("toolong@example.test", out, 4), -1);

    CHECK_STR(address_domain("a@example.test"), "example.test");
    CHECK_STR(address_domain("\"a@b\"@example.test"), "example.test");
    CHECK(address_domain("nodomain") == NULL);

    CHECK(domain_matches("example.test", "example.test", false));
    CHECK(domain_matches("EXAMPLE.test", "example.TEST", false));
    CHECK(!domain_matches("sub.example.test", "example.test", false));
    CHECK(domain_matches("sub.example.test", "example.test", true));
    CHECK(domain_matches("a.b.EXAMPLE.test", "example.test", true));
    CHECK(!domain_matches("example.test", "example.test", true));
    CHECK(!domain_matches("badexample.test", "example.test", true));
    CHECK(!domain_matches(".example.test", "example.test", true));
    CHECK(!domain_matches("test", "example.test", true));
}

static void template_check(void)
{
    char err[256];
    CHECK_INT(path_template_check("var/mail/{domain}/{user}", err, sizeof err), 0);
    CHECK_INT(path_template_check("/srv/{rule}/{domain}/{local}", err, sizeof err), 0);
    CHECK_INT(path_template_check("var/mail/fixed", err, sizeof err), 0);
    CHECK_INT(path_template_check("var/mail/{nope}", err, sizeof err), -1);
    CHECK(strstr(err, "{nope}") != NULL);
    CHECK_INT(path_template_check("var/{DOMAIN}", err, sizeof err), -1);
    CHECK_INT(path_template_check("var/{}", err, sizeof err), -1);
    CHECK_INT(path_template_check("var/{domain", err, sizeof err), -1);
    CHECK_INT(path_template_check("var/domain}", err, sizeof err), -1);
    CHECK_INT(path_template_check("var/{user{domain}}", err, sizeof err), -1);
    CHECK_INT(path_template_check("", err, sizeof err), -1);
}

/* Expands tmpl; returns the result or NULL when refused. */
static const char *expand(const char *tmpl, const char *rcpt, const char *rule)
{
    static char out[256];
    char err[256] = "";
    if (path_template_expand(tmpl, rcpt, rule, out, sizeof out, err, sizeof err) < 0) {
        CHECK(err[0] != '\0'); /* a refusal always says why */
        return NULL;
    }
    return out;
}

static void template_expand(void)
{
    const char *t = "var/mail/{domain}/{user}";
    CHECK_STR(expand(t, "user@example.test", "r"), "var/mail/example.test/user");
    CHECK_STR(expand(t, "User+Tag@Example.TEST", "r"), "var/mail/example.test/user");
    CHECK_STR(expand("m/{local}", "User+Tag@example.test", "r"), "m/user+tag");
    CHECK_STR(expand("m/{rule}/{user}", "a@example.test", "Store-All"), "m/Store-All/a");
    CHECK_STR(expand("m/{domain}", "a@[192.0.2.1]", "r"), "m/[192.0.2.1]");
    CHECK_STR(expand("m/{local}", "\"a b\"@example.test", "r"), "m/a b");
    /* Values that could leave the tree are refused... */
    CHECK(expand("m/{local}", "\"..\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\"../../etc\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\".hidden\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\"a/b\"@example.test", "r") == NULL);
    CHECK(expand("m/{user}", "\"a/b\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\"x\\\\/y\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\"tab\tx\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\"nl\nx\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\"del\x7fx\"@example.test", "r") == NULL);
    CHECK(expand("m/{local}", "\"\"@example.test", "r") == NULL);
    CHECK(expand("m/{user}", "\".+x\"@example.test", "r") == NULL);
    CHECK(expand("m/{rule}", "a@example.test", "../up") == NULL);
    CHECK(expand("m/{rule}", "a@example.test", "a/b") == NULL);
    /* ... but only the variables the template uses matter. */
    CHECK_STR(expand("m/{domain}", "\"a/b\"@example.test", "r"), "m/example.test");
    /* No room: refused rather than cut. */
    char out[12], err[128];
    CHECK_INT(path_template_expand(t, "user@example.test", "r", out, sizeof out, err, sizeof err),
              -1);
}

int main(void)
{
    ses_conditions();
    rule_without_conditions();
    addresses();
    template_check();
    template_expand();
    return CHECK_DONE();
}
