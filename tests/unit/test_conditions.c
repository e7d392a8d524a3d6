/* Rule conditions, row by row of the field table: for every field a condition that holds and
 * one that does not, on messages built here; every parse error message, word for word; the
 * `sluice check` description and the `sluice test` label of each kind; and every field of the
 * table documented in docs/man/sluice.lua.5, so that a new row cannot go undocumented. The
 * conditions are parsed from Lua text, as the config loader hands them over. */
#include "check.h"
#include "man_terms.h"

#include "core/buf.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "rules/conditions.h"

#include <gmime/gmime.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The messages the cases run on. */
enum variant {
    PLAIN, /* over TLS 1.3, with From, an encoded Subject and two X-Tag fields */
    BARE,  /* null sender, no HELO, no TLS, no Subject */
    /* The verdicts (and the policy, numbered like them) differ between any two fields in one
     * of the two messages, so a row reading another field's verdict fails a case. */
};

static struct message *make_message(enum variant v)
{
    struct message *m = message_new(NULL);
    if (v == PLAIN) {
        m->env.mail_from = xstrdup("alice@example.org");
        m->env.helo = xstrdup("mx1.Example.org");
        snprintf(m->env.client_ip, sizeof m->env.client_ip, "192.0.2.7");
        m->env.tls = true;
        snprintf(m->env.tls_version, sizeof m->env.tls_version, "TLSv1.3");
        buf_puts(&m->body, "From: Bob <bob@sender.test>\r\n"
                           "Subject: =?UTF-8?Q?caf=C3=A9?= menu\r\n"
                           "X-Tag: first\r\n"
                           "X-Tag: second\r\n"
                           "\r\n"
                           "Hello.\r\n");
        m->env.verdicts = (struct verdicts){.spf = VERDICT_PASS,
                                            .dkim = VERDICT_FAIL,
                                            .dmarc = VERDICT_GRAY,
                                            .spam = VERDICT_PROCESSING_FAILED,
                                            .dmarc_policy = DMARC_POLICY_REJECT};
    } else {
        m->env.mail_from = xstrdup("");
        snprintf(m->env.client_ip, sizeof m->env.client_ip, "2001:db8::25");
        buf_puts(&m->body, "From: carol@bare.test\r\n\r\nHi.\r\n");
        m->env.verdicts = (struct verdicts){.dkim = VERDICT_PASS,
                                            .dmarc = VERDICT_FAIL,
                                            .spam = VERDICT_GRAY,
                                            .virus = VERDICT_PROCESSING_FAILED,
                                            .dmarc_policy = DMARC_POLICY_NONE};
    }
    return m;
}

/* Parses the Lua expression text as a `when` table: 0 and *out filled, or -1 and err. */
static int parse(const char *text, struct cond_list *out, char *err, size_t errlen)
{
    lua_State *L = luaL_newstate();
    char chunk[2048];
    snprintf(chunk, sizeof chunk, "return %s", text);
    if (luaL_loadstring(L, chunk) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
        snprintf(err, errlen, "bad test Lua: %s", lua_tostring(L, -1));
        lua_close(L);
        return -2;
    }
    memset(out, 0, sizeof *out);
    int rc = cond_list_parse(L, -1, "when", out, err, errlen);
    lua_close(L);
    return rc;
}

/* --- every field: a condition that holds and one that does not ---------------------------- */

static const struct hold_case {
    const char *field;
    const char *when;
    enum variant msg;
    bool holds;
} holds[] = {
    {"sender", "{ sender = \"alice@example.org\" }", PLAIN, true},
    {"sender", "{ sender = \"Example.ORG\" }", PLAIN, true},
    {"sender", "{ sender = \".org\" }", PLAIN, true},
    {"sender", "{ sender = { \"x.test\", \"alice@example.org\" } }", PLAIN, true},
    {"sender", "{ sender = \"bob@example.org\" }", PLAIN, false},
    {"sender", "{ sender = \"<>\" }", PLAIN, false},
    {"sender", "{ sender = \"<>\" }", BARE, true},
    {"sender", "{ sender = \".test\" }", BARE, false},
    {"helo", "{ helo = \"MX1.example.ORG\" }", PLAIN, true},
    {"helo", "{ helo = { starts_with = \"mx1.\" } }", PLAIN, true},
    {"helo", "{ helo = { ends_with = \".example.org\" } }", PLAIN, true},
    {"helo", "{ helo = { contains = \"EXAMPLE\" } }", PLAIN, true},
    {"helo", "{ helo = { exact = \"mx1.example.org\" } }", PLAIN, true},
    {"helo", "{ helo = { regex = \"^mx[0-9]\\\\.Example\" } }", PLAIN, true},
    {"helo", "{ helo = { regex = \"^mx[0-9]\\\\.example\" } }", PLAIN, false}, /* as written */
    {"helo", "{ helo = { regex = \"(?i)^mx[0-9]\\\\.example\" } }", PLAIN, true},
    {"helo", "{ helo = \"mx1\" }", PLAIN, false},
    {"helo", "{ helo = { starts_with = \"example\" } }", PLAIN, false},
    {"helo", "{ helo = { ends_with = \"mx1.example.org.uk\" } }", PLAIN, false},
    {"helo", "{ helo = { regex = \"\" } }", BARE, false}, /* no HELO: nothing to match */
    {"from", "{ from = \"bob@sender.test\" }", PLAIN, true},
    {"from", "{ from = \"sender.test\" }", PLAIN, true},
    {"from", "{ from = \"alice@example.org\" }", PLAIN, false},
    {"from", "{ from = \".test\" }", BARE, true},
    {"header", "{ header = { [\"X-Tag\"] = \"second\" } }", PLAIN, true}, /* any of the fields */
    {"header", "{ header = { [\"x-tag\"] = { starts_with = \"fir\" } } }", PLAIN, true},
    {"header", "{ header = { [\"X-Tag\"] = \"third\" } }", PLAIN, false},
    {"header", "{ header = { [\"X-Tag\"] = \"first\", [\"X-Other\"] = \"x\" } }", PLAIN, false},
    {"header", "{ header = { [\"X-Tag\"] = { regex = \"\" } } }", BARE, false},
    {"subject", "{ subject = \"caf\xc3\xa9 menu\" }", PLAIN, true}, /* RFC 2047 decoded */
    {"subject", "{ subject = { contains = \"=?UTF-8?\" } }", PLAIN, false},
    {"subject", "{ subject = \"\" }", BARE, true}, /* no Subject reads as "" */
    {"subject", "{ subject = { contains = \"menu\" } }", BARE, false},
    {"size", "{ size = { gt = 10 } }", PLAIN, true},
    {"size", "{ size = { gt = 10, lt = 1000 } }", PLAIN, true},
    {"size", "{ size = { lt = 10 } }", PLAIN, false},
    {"size", "{ size = { gt = 1000 } }", PLAIN, false},
    {"client_ip", "{ client_ip = \"192.0.2.0/24\" }", PLAIN, true},
    {"client_ip", "{ client_ip = { \"198.51.100.0/24\", \"192.0.2.7/32\" } }", PLAIN, true},
    {"client_ip", "{ client_ip = \"2001:db8::/32\" }", PLAIN, false},
    {"client_ip", "{ client_ip = \"2001:db8::/32\" }", BARE, true},
    {"tls", "{ tls = true }", PLAIN, true},
    {"tls", "{ tls = false }", PLAIN, false},
    {"tls", "{ tls = false }", BARE, true},
    {"tls_version", "{ tls_version = \"TLSv1.3\" }", PLAIN, true},
    {"tls_version", "{ tls_version = \"tls1.3\" }", PLAIN, true}, /* "TLS1.3" accepted too */
    {"tls_version", "{ tls_version = \"TLSv1.2\" }", PLAIN, false},
    {"tls_version", "{ tls_version = { regex = \"\" } }", BARE, false}, /* no TLS */
    {"spf", "{ spf = \"PASS\" }", PLAIN, true},
    {"spf", "{ spf = \"pass\" }", PLAIN, true},
    {"spf", "{ spf = { \"FAIL\", \"GRAY\" } }", PLAIN, false},
    {"spf", "{ spf = { \"PASS\", \"FAIL\", \"GRAY\", \"PROCESSING_FAILED\" } }", BARE, false},
    {"dkim", "{ dkim = { \"GRAY\", \"FAIL\" } }", PLAIN, true},
    {"dkim", "{ dkim = \"PASS\" }", PLAIN, false},
    {"dkim", "{ dkim = \"PASS\" }", BARE, true},
    {"dmarc", "{ dmarc = \"GRAY\" }", PLAIN, true},
    {"dmarc", "{ dmarc = \"FAIL\" }", PLAIN, false},
    {"dmarc", "{ dmarc = \"FAIL\" }", BARE, true},
    {"spam", "{ spam = \"PROCESSING_FAILED\" }", PLAIN, true},
    {"spam", "{ spam = \"PASS\" }", PLAIN, false},
    {"spam", "{ spam = \"GRAY\" }", BARE, true},
    {"virus", "{ virus = { \"PASS\", \"FAIL\", \"GRAY\", \"PROCESSING_FAILED\" } }", PLAIN, false},
    {"virus", "{ virus = \"PROCESSING_FAILED\" }", BARE, true},
    {"virus", "{ virus = \"PASS\" }", BARE, false},
    {"dmarc_policy", "{ dmarc_policy = \"REJECT\" }", PLAIN, true},
    {"dmarc_policy", "{ dmarc_policy = { \"none\", \"quarantine\" } }", PLAIN, false},
    {"dmarc_policy", "{ dmarc_policy = \"none\" }", BARE, true},
    {"dmarc_policy", "{ dmarc_policy = { \"QUARANTINE\", \"REJECT\" } }", BARE, false},
};

static void check_holds(void)
{
    struct message *msgs[] = {make_message(PLAIN), make_message(BARE)};
    for (size_t i = 0; i < sizeof holds / sizeof holds[0]; i++) {
        const struct hold_case *c = &holds[i];
        struct cond_list l;
        char err[512] = "";
        int rc = parse(c->when, &l, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "  %s: %s\n", c->when, err);
        CHECK_INT(rc, 0);
        const struct condition *failed = NULL, *hit = NULL;
        bool all = cond_list_all(&l, msgs[c->msg], &failed);
        bool any = cond_list_any(&l, msgs[c->msg], &hit);
        if (all != c->holds)
            fprintf(stderr, "  %s on %s: holds=%d, expected %d\n", c->when,
                    c->msg == PLAIN ? "PLAIN" : "BARE", all, c->holds);
        CHECK(all == c->holds);
        /* all fails naming a condition; with one condition, any agrees with all. */
        CHECK(all || failed != NULL);
        if (l.n == 1)
            CHECK(any == all && (any ? hit == &l.items[0] : true));
        cond_list_free(&l);
    }
    message_free(msgs[0]);
    message_free(msgs[1]);
}

/* Every row of the table has a case that holds and one that does not, and no case names a
 * field the table lacks. */
static void check_every_field(void)
{
    for (size_t f = 0; f < cond_nfields(); f++) {
        const char *name = cond_field_name(f);
        int yes = 0, no = 0;
        for (size_t i = 0; i < sizeof holds / sizeof holds[0]; i++)
            if (strcmp(holds[i].field, name) == 0)
                *(holds[i].holds ? &yes : &no) += 1;
        if (!yes || !no)
            fprintf(stderr, "  field %s: %d cases that hold, %d that do not\n", name, yes, no);
        CHECK(yes > 0 && no > 0);
    }
    CHECK(cond_field_name(cond_nfields()) == NULL);
    for (size_t i = 0; i < sizeof holds / sizeof holds[0]; i++) {
        size_t f = 0;
        while (f < cond_nfields() && strcmp(cond_field_name(f), holds[i].field) != 0)
            f++;
        CHECK(f < cond_nfields());
        /* The case's condition is of the field it is filed under. */
        struct cond_list l;
        char err[512], label[128], want[128];
        CHECK_INT(parse(holds[i].when, &l, err, sizeof err), 0);
        CHECK(l.n >= 1);
        cond_label(&l.items[0], "when", label, sizeof label);
        snprintf(want, sizeof want, "when.%s", holds[i].field);
        CHECK_PREFIX(label, want);
        cond_list_free(&l);
    }
}

/* How parse errors and `sluice test` name a condition; header ones are one per name. */
static void check_labels(void)
{
    struct cond_list l;
    char err[512], label[128];
    CHECK_INT(parse("{ subject = \"x\", header = { [\"X-B\"] = \"1\", [\"X-A\"] = \"2\" } }", &l,
                    err, sizeof err),
              0);
    CHECK_INT(l.n, 3);
    CHECK_INT(cond_label(&l.items[0], "when", label, sizeof label), 18);
    CHECK_STR(label, "when.header[\"X-A\"]");
    cond_label(&l.items[1], "unless", label, sizeof label);
    CHECK_STR(label, "unless.header[\"X-B\"]");
    cond_label(&l.items[2], "unless", label, sizeof label);
    CHECK_STR(label, "unless.subject");
    cond_label(&l.items[2], "when", label, 8); /* truncated like snprintf */
    CHECK_STR(label, "when.su");
    cond_list_free(&l);
}

/* Several conditions: all needs every one, any one; the one named is the first in field order
 * (the table's), whatever order Lua iterates the keys in. */
static void check_lists(void)
{
    struct message *m = make_message(PLAIN);
    struct cond_list l;
    char err[512];
    CHECK_INT(parse("{ virus = \"PASS\", spf = \"PASS\", helo = \"nope\" }", &l, err, sizeof err),
              0);
    const struct condition *c = NULL;
    CHECK(!cond_list_all(&l, m, &c));
    CHECK(c == &l.items[0]); /* helo, before spf and virus */
    CHECK(cond_list_any(&l, m, &c));
    CHECK(c == &l.items[1]); /* spf */
    struct buf d = {0};
    cond_list_describe(&l, &d);
    CHECK_STR(buf_cstr(&d), "helo=\"nope\"; spf=PASS; virus=PASS");
    buf_free(&d);
    cond_list_free(&l);

    CHECK_INT(parse("{}", &l, err, sizeof err), 0);
    CHECK(cond_list_all(&l, m, NULL));
    CHECK(!cond_list_any(&l, m, NULL));
    cond_list_free(&l);
    message_free(m);
}

/* --- parse errors ------------------------------------------------------------------------- */

#define KNOWN                                                                                      \
    "(known: sender, helo, from, header, subject, size, client_ip, tls, tls_version, spf, dkim, "  \
    "dmarc, spam, virus, dmarc_policy)"
#define STR_EXPECTED "expected a string or { contains|starts_with|ends_with|regex = \"...\" }"
#define VERDICTS "is not one of PASS, FAIL, GRAY, PROCESSING_FAILED"

static const struct error_case {
    const char *when;
    const char *err;
} errors[] = {
    {"5", "'when' must be a table of conditions"},
    {"{ colour = \"red\" }", "when: unknown condition 'colour' " KNOWN},
    {"{ \"sender\" }", "when: unknown condition '?' " KNOWN},
    {"{ helo = 5 }", "when.helo: " STR_EXPECTED ", got number"},
    {"{ subject = { \"a\", true } }", "when.subject: " STR_EXPECTED ", got boolean"},
    {"{ helo = { like = \"x\" } }",
     "when.helo: unknown key 'like' (known: exact, contains, starts_with, ends_with, regex)"},
    {"{ helo = { contains = 5 } }", "field 'contains' must be a string, got number"},
    {"{ helo = { contains = \"a\", ends_with = \"b\" } }",
     "when.helo: give one operator per alternative"},
    {"{ tls_version = {} }", "when.tls_version: empty string operator table"},
    {"{ subject = { regex = \"(x\" } }",
     "when.subject: bad regex \"(x\" at offset 2: missing closing parenthesis"},
    {"{ sender = 5 }", "when.sender: expected an address, domain or .domain string, got number"},
    {"{ sender = \"a@@b\" }", "when.sender: recipient condition 'a@@b' is not a valid address"},
    {"{ from = \"<>\" }", "when.from: recipient condition '<>' is not a valid domain"},
    {"{ from = { \"ok.test\", true } }",
     "when.from: expected an address, domain or .domain string, got boolean"},
    {"{ client_ip = \"10.0.0.1/8\" }",
     "when.client_ip: '10.0.0.1/8' is not an IPv4/IPv6 network like \"192.0.2.0/24\" (address "
     "has bits set beyond the prefix length)"},
    {"{ client_ip = { 5 } }",
     "when.client_ip: 'number' is not an IPv4/IPv6 network like \"192.0.2.0/24\" (expected a "
     "string)"},
    {"{ spf = \"MAYBE\" }", "when.spf: 'MAYBE' " VERDICTS},
    {"{ virus = 1 }", "when.virus: 'number' " VERDICTS},
    {"{ dkim = { \"PASS\", \"FAIL\", \"GRAY\", \"PASS\", \"FAIL\", \"GRAY\", \"PASS\", \"FAIL\" } "
     "}",
     "when.dkim: 'FAIL' " VERDICTS},
    {"{ dmarc_policy = \"FAIL\" }", "when.dmarc_policy: 'FAIL' is not one of NONE, QUARANTINE, "
                                    "REJECT"},
    {"{ size = 5 }", "when.size: expected { gt = N, lt = N }"},
    {"{ size = { eq = 5 } }", "when.size: unknown key 'eq' (known: gt, lt)"},
    {"{ size = { gt = \"x\" } }", "field 'gt' must be an integer, got string"},
    {"{ size = { lt = -1 } }", "field 'lt' must be between 0 and 1125899906842624, got -1"},
    {"{ size = {} }", "when.size: give gt and/or lt"},
    {"{ tls = \"yes\" }", "when.tls: expected true or false"},
    {"{ header = \"X-Tag\" }", "when.header: expected { [\"X-Name\"] = \"value\" }"},
    {"{ header = { \"X-Tag\" } }", "when.header: keys must be header names"},
    {"{ header = { [\"X-Tag\"] = 5 } }", "when.header[\"X-Tag\"]: " STR_EXPECTED ", got number"},
    {"{ header = { [\"X-Tag\"] = { regex = \"[\" } } }",
     "when.header[\"X-Tag\"]: bad regex \"[\" at offset 1: missing terminating ] for character "
     "class"},
};

static void check_errors(void)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        struct cond_list l;
        char err[512] = "";
        int rc = parse(errors[i].when, &l, err, sizeof err);
        CHECK_INT(rc, -1);
        CHECK_STR(err, errors[i].err);
        cond_list_free(&l); /* what was parsed before the error is the caller's to free */
    }
}

/* --- `sluice check`'s description of each kind --------------------------------------------- */

static const struct describe_case {
    const char *when;
    const char *text;
} describes[] = {
    {"{ sender = { \"<>\", \"Example.org\", \"a@b.test\" } }", "sender=<>|Example.org|a@b.test"},
    {"{ from = \".test\" }", "from=.test"},
    {"{ helo = { \"a\", { contains = \"b\" }, { starts_with = \"c\" }, { ends_with = \"d\" }, "
     "{ exact = \"e\" }, { regex = \"^f\" } } }",
     "helo=\"a\"|contains:\"b\"|starts_with:\"c\"|ends_with:\"d\"|\"e\"|regex:\"^f\""},
    {"{ header = { [\"X-B\"] = \"1\", [\"x-a\"] = { \"2\", \"3\" } } }",
     "header[x-a]=\"2\"|\"3\"; header[X-B]=\"1\""},
    {"{ subject = \"\" }", "subject=\"\""},
    {"{ size = { gt = 1, lt = 9 } }", "size=>1,<9"},
    {"{ size = { lt = 9 } }", "size=<9"},
    {"{ size = { gt = 0 } }", "size=>0"},
    {"{ client_ip = { \"192.0.2.0/24\", \"2001:db8::/32\" } }",
     "client_ip=192.0.2.0/24|2001:db8::/32"},
    {"{ tls = false }", "tls=false"},
    {"{ tls = true }", "tls=true"},
    {"{ tls_version = { \"TLS1.3\", { starts_with = \"TLSv1.\" } } }",
     "tls_version=\"TLS1.3\"|starts_with:\"TLSv1.\""},
    {"{ spf = { \"pass\", \"FAIL\" }, dkim = \"gray\", dmarc = \"PROCESSING_FAILED\" }",
     "spf=PASS|FAIL; dkim=GRAY; dmarc=PROCESSING_FAILED"},
    {"{ virus = \"FAIL\", spam = \"GRAY\" }", "spam=GRAY; virus=FAIL"},
    {"{ dmarc_policy = { \"reject\", \"Quarantine\", \"NONE\" } }",
     "dmarc_policy=REJECT|QUARANTINE|NONE"},
};

static void check_describe(void)
{
    for (size_t i = 0; i < sizeof describes / sizeof describes[0]; i++) {
        struct cond_list l;
        char err[512] = "";
        int rc = parse(describes[i].when, &l, err, sizeof err);
        if (rc != 0)
            fprintf(stderr, "  %s: %s\n", describes[i].when, err);
        CHECK_INT(rc, 0);
        struct buf d = {0};
        cond_list_describe(&l, &d);
        CHECK_STR(buf_cstr(&d), describes[i].text);
        buf_free(&d);
        cond_list_free(&l);
    }
}

/* The terms of the man page's CONDITIONS section: each ".TP" followed by ".B name" or
 * ".BR a \", \" b ..." (several fields in one entry). Every field of the table is there, and
 * nothing else. */
static void check_man_page(void)
{
    static char terms[256][MAN_TERM_MAX];
    int nt = man_terms("CONDITIONS", terms, 256);
    CHECK(nt > 0);
    size_t n = cond_nfields(), found = 0;
    int *seen = calloc(n, sizeof *seen);
    for (int t = 0; t < nt; t++) {
        size_t i = 0;
        while (i < n && strcmp(cond_field_name(i), terms[t]) != 0)
            i++;
        if (i == n)
            fprintf(stderr, "  man page documents unknown condition %s\n", terms[t]);
        CHECK(i < n);
        if (i < n && !seen[i]++)
            found++;
    }
    for (size_t i = 0; i < n; i++)
        if (!seen[i])
            fprintf(stderr, "  condition %s is not in the man page's CONDITIONS\n",
                    cond_field_name(i));
    CHECK_INT(found, n);
    free(seen);
}

int main(void)
{
    g_mime_init(); /* the subject condition decodes RFC 2047 words, as sluice does */
    check_holds();
    check_every_field();
    check_labels();
    check_lists();
    check_errors();
    check_describe();
    check_man_page();
    return CHECK_DONE();
}
