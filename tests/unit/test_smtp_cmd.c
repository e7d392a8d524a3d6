/* The SMTP command parser (receiver/smtp_cmd.h): verbs, envelope paths, MAIL parameters and
 * the exact reply for each kind of bad line. */
#include "check.h"
#include "receiver/smtp_cmd.h"

#include <stdio.h>
#include <string.h>

static struct smtp_cmd cmd;
static const char *err;
static char line[600];

/* Parses a NUL-terminated command text; returns the parser's result. */
static int parse(const char *text)
{
    snprintf(line, sizeof line, "%s", text);
    err = NULL;
    return smtp_cmd_parse(line, strlen(line), &cmd, &err);
}

/* Parses text and checks it is accepted as verb. */
#define OK(text, want_verb)                                                                        \
    do {                                                                                           \
        CHECK_INT(parse(text), 0);                                                                 \
        CHECK_INT(cmd.verb, want_verb);                                                            \
    } while (0)

/* Parses text and checks it is refused with a reply starting with code. */
#define BAD(text, code)                                                                            \
    do {                                                                                           \
        CHECK_INT(parse(text), -1);                                                                \
        CHECK_PREFIX(err, code);                                                                   \
    } while (0)

static void every_verb(void)
{
    OK("HELO client.example.net", CMD_HELO);
    CHECK_STR(cmd.arg, "client.example.net");
    OK("EHLO client.example.net", CMD_EHLO);
    OK("MAIL FROM:<a@example.net>", CMD_MAIL);
    CHECK_STR(cmd.path, "a@example.net");
    CHECK_INT(cmd.size, -1);
    CHECK_INT(cmd.body, BODY_UNSPECIFIED);
    OK("RCPT TO:<user@example.test>", CMD_RCPT);
    CHECK_STR(cmd.path, "user@example.test");
    OK("DATA", CMD_DATA);
    CHECK_STR(cmd.arg, "");
    OK("RSET", CMD_RSET);
    OK("NOOP", CMD_NOOP);
    OK("NOOP anything at all", CMD_NOOP);
    OK("QUIT", CMD_QUIT);
    OK("HELP", CMD_HELP);
    OK("HELP MAIL", CMD_HELP);
    OK("VRFY user", CMD_VRFY);
    OK("EXPN list", CMD_EXPN);
    OK("STARTTLS", CMD_STARTTLS);
    OK("XCLIENT ADDR=1.2.3.4", CMD_XCLIENT);
}

static void case_insensitive(void)
{
    OK("ehlo x.example", CMD_EHLO);
    OK("Helo x.example", CMD_HELO);
    OK("mail from:<a@example.net>", CMD_MAIL);
    CHECK_STR(cmd.path, "a@example.net");
    OK("MaIl FrOm:<a@example.net> size=10 body=8bitmime", CMD_MAIL);
    CHECK_INT(cmd.size, 10);
    CHECK_INT(cmd.body, BODY_8BITMIME);
    OK("rcpt to:<User@Example.TEST>", CMD_RCPT);
    CHECK_STR(cmd.path, "User@Example.TEST"); /* the path keeps its case */
    OK("data", CMD_DATA);
    OK("StartTLS", CMD_STARTTLS);
    OK("quit", CMD_QUIT);
}

static void paths(void)
{
    OK("MAIL FROM:<>", CMD_MAIL);
    CHECK_STR(cmd.path, "");
    BAD("RCPT TO:<>", "501 5.1.3");
    /* Obsolete source routes are dropped (RFC 5321 §4.1.1.3 / Appendix C). */
    OK("RCPT TO:<@relay1.example,@relay2.example:user@example.test>", CMD_RCPT);
    CHECK_STR(cmd.path, "user@example.test");
    OK("MAIL FROM:<@relay.example:a@example.net>", CMD_MAIL);
    CHECK_STR(cmd.path, "a@example.net");
    BAD("RCPT TO:<@relay.example>", "501 5.1.3");
    /* A quoted local part may hold '>' and escaped quotes. */
    OK("RCPT TO:<\"a>b\"@example.test>", CMD_RCPT);
    CHECK_STR(cmd.path, "\"a>b\"@example.test");
    OK("MAIL FROM:<\"x\\\">y\"@example.net> SIZE=5", CMD_MAIL);
    CHECK_STR(cmd.path, "\"x\\\">y\"@example.net");
    CHECK_INT(cmd.size, 5);
    OK("RCPT TO:<\"with space\"@example.test>", CMD_RCPT);
    CHECK_STR(cmd.path, "\"with space\"@example.test");
    /* Spaces after the colon: a common client quirk, accepted. */
    OK("MAIL FROM: <a@example.net>", CMD_MAIL);
    CHECK_STR(cmd.path, "a@example.net");
    OK("RCPT TO:   <user@example.test>", CMD_RCPT);
    CHECK_STR(cmd.path, "user@example.test");
    OK("RCPT TO:<user@[192.0.2.1]>", CMD_RCPT);
    CHECK_STR(cmd.path, "user@[192.0.2.1]");
    /* Broken paths. */
    BAD("MAIL FROM:a@example.net", "501 5.1.7");
    BAD("MAIL FROM:<a@example.net", "501 5.1.7");
    BAD("MAIL FROM:<a@example.net>x", "501 5.1.7");
    BAD("RCPT TO:user@example.test", "501 5.1.3");
    BAD("RCPT TO:<\"unterminated@example.test>", "501 5.1.3");
    BAD("MAIL FROM:<not an address>", "553 5.1.7");
    BAD("RCPT TO:<a..b@example.test>", "553 5.1.3");
    BAD("RCPT TO:<user@-bad-.example>", "553 5.1.3");
    BAD("RCPT TO:<user>", "553 5.1.3");
    BAD("MAIL TO:<a@example.net>", "501 5.5.4");
    BAD("RCPT FROM:<a@example.net>", "501 5.5.4");
    BAD("MAIL <a@example.net>", "501 5.5.4");
}

static void mail_params(void)
{
    OK("MAIL FROM:<a@example.net> SIZE=1000", CMD_MAIL);
    CHECK_INT(cmd.size, 1000);
    OK("MAIL FROM:<a@example.net> SIZE=0", CMD_MAIL);
    CHECK_INT(cmd.size, 0);
    OK("MAIL FROM:<a@example.net> BODY=8BITMIME", CMD_MAIL);
    CHECK_INT(cmd.body, BODY_8BITMIME);
    OK("MAIL FROM:<a@example.net> BODY=7BIT", CMD_MAIL);
    CHECK_INT(cmd.body, BODY_7BIT);
    OK("MAIL FROM:<a@example.net>  BODY=8BITMIME   SIZE=42", CMD_MAIL);
    CHECK_INT(cmd.body, BODY_8BITMIME);
    CHECK_INT(cmd.size, 42);
    OK("MAIL FROM:<> SIZE=77", CMD_MAIL);
    CHECK_STR(cmd.path, "");
    CHECK_INT(cmd.size, 77);
    BAD("MAIL FROM:<a@example.net> SIZE=abc", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> SIZE=", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> SIZE=-1", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> SIZE=12x", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> SIZE=99999999999999999999999", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> BODY=BINARYMIME", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> BODY=", "501 5.5.4");
    /* Unknown parameters: 555 5.5.4 (RFC 5321 §4.1.1.11). */
    BAD("MAIL FROM:<a@example.net> FOO=BAR", "555 5.5.4");
    BAD("MAIL FROM:<a@example.net> SMTPUTF9", "555 5.5.4");
    BAD("MAIL FROM:<a@example.net> SIZE", "555 5.5.4");
    BAD("MAIL FROM:<a@example.net> SIZE=10 AUTH=<>", "555 5.5.4");
    BAD("RCPT TO:<user@example.test> FOO=BAR", "555 5.5.4");
    BAD("RCPT TO:<user@example.test> SIZE=10", "555 5.5.4");
    BAD("MAIL FROM:<a@example.net> NOTIFY=NEVER", "555 5.5.4");
    BAD("MAIL FROM:<a@example.net> SIZE=1 SIZE=2", "501 5.5.4");
}

/* RFC 6531: SMTPUTF8 on MAIL, UTF-8 addresses only when well-formed. */
static void smtputf8(void)
{
    OK("MAIL FROM:<a@example.net> SMTPUTF8", CMD_MAIL);
    CHECK_INT(cmd.smtputf8, 1);
    CHECK_INT(cmd.path_utf8, 0);
    OK("MAIL FROM:<\xce\xb4\xce\xbf\xce\xba@\xce\xb4.example> SMTPUTF8 BODY=8BITMIME", CMD_MAIL);
    CHECK_INT(cmd.path_utf8, 1);
    BAD("MAIL FROM:<\xce\xb4@example.net>", "553 5.6.7");
    BAD("MAIL FROM:<a@example.net> SMTPUTF8=yes", "501 5.5.4");
    OK("RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@example.test>", CMD_RCPT);
    CHECK_INT(cmd.path_utf8, 1); /* the session refuses it outside an SMTPUTF8 transaction */
    OK("RCPT TO:<\"\xe7\x94\xa8 x\"@example.test>", CMD_RCPT);
    /* Not well-formed: a lone continuation byte, an overlong '/', a surrogate, a C1 control,
     * a truncated sequence, a code point above U+10FFFF. */
    BAD("RCPT TO:<a\x80"
        "b@example.test>",
        "553 5.6.7");
    BAD("RCPT TO:<a\xc0\xaf"
        "b@example.test>",
        "553 5.6.7");
    BAD("RCPT TO:<a\xed\xa0\x80@example.test>", "553 5.6.7");
    BAD("RCPT TO:<a\xc2\x85@example.test>", "553 5.6.7");
    BAD("RCPT TO:<a\xe7\x94@example.test>", "553 5.6.7");
    BAD("RCPT TO:<a\xf4\x90\x80\x80@example.test>", "553 5.6.7");
    /* Well-formed UTF-8 in the wrong place is still bad syntax. */
    BAD("RCPT TO:<\xce\xb4..x@example.test>", "553 5.1.3");
    BAD("RCPT TO:<\xce\xb4@exa mple.test>", "553 5.1.3");
}

/* RFC 3461 DSN parameters. */
static void dsn_params(void)
{
    OK("MAIL FROM:<a@example.net> RET=HDRS ENVID=QQ+2B1+3Dx", CMD_MAIL);
    CHECK_INT(cmd.ret, DSN_RET_HDRS);
    CHECK_STR(cmd.envid, "QQ+1=x");
    OK("MAIL FROM:<a@example.net> ret=full", CMD_MAIL);
    CHECK_INT(cmd.ret, DSN_RET_FULL);
    BAD("MAIL FROM:<a@example.net> RET=BODY", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> ENVID=a+2", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> ENVID=a+2b", "501 5.5.4"); /* lower-case hex */
    BAD("MAIL FROM:<a@example.net> ENVID=", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> ENVID=a=b", "501 5.5.4");
    /* Decoded controls would be header injection in the DSN; xtext is US-ASCII text. */
    BAD("MAIL FROM:<a@example.net> ENVID=a+0D+0AX-Injected:+20yes", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> ENVID=a+00", "501 5.5.4");
    BAD("MAIL FROM:<a@example.net> ENVID=a+C3+A4", "501 5.5.4");
    OK("MAIL FROM:<a@example.net> ENVID=a+20b", CMD_MAIL);
    CHECK_STR(cmd.envid, "a b");
    OK("RCPT TO:<user@example.test> NOTIFY=NEVER", CMD_RCPT);
    CHECK_INT(cmd.notify, DSN_NOTIFY_NEVER);
    OK("RCPT TO:<user@example.test> NOTIFY=success,FAILURE,DELAY ORCPT=rfc822;bob+2Bx@example.com",
       CMD_RCPT);
    CHECK_INT(cmd.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
    CHECK_STR(cmd.orcpt, "rfc822;bob+x@example.com");
    BAD("RCPT TO:<user@example.test> NOTIFY=NEVER,FAILURE", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> NOTIFY=FAILURE,FAILURE", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> NOTIFY=SOMETIMES", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> NOTIFY=", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> NOTIFY=FAILURE,", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> ORCPT=bob@example.com", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> ORCPT=;bob@example.com", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> ORCPT=rfc822;", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> ORCPT=rfc822;a+zz", "501 5.5.4");
    BAD("RCPT TO:<user@example.test> ORCPT=rfc822;a+0Ab@example.com", "501 5.5.4");
}

static void bad_syntax(void)
{
    BAD("FROB", "500 5.5.2");
    BAD("", "500 5.5.2");
    BAD(" ", "500 5.5.2");
    BAD("MAILFROM:<a@example.net>", "500 5.5.2");
    BAD("EHLOx", "500 5.5.2");
    BAD("STARTTLSX", "500 5.5.2");
    BAD("EHLO", "501 5.5.4");
    BAD("HELO", "501 5.5.4");
    BAD("HELO   ", "501 5.5.4");
    BAD("MAIL", "501 5.5.4");
    BAD("RCPT", "501 5.5.4");
    BAD("VRFY", "501 5.5.4");
    BAD("EXPN", "501 5.5.4");
    BAD("DATA now", "501 5.5.4");
    BAD("RSET x", "501 5.5.4");
    BAD("QUIT now", "501 5.5.4");
    BAD("STARTTLS please", "501 5.5.4");
    /* A verb is recognised by its name only, whatever comes first on the reply. */
    CHECK_INT(parse("DATA now"), -1);
    CHECK_INT(cmd.verb, CMD_DATA);
}

static void bdat(void)
{
    OK("BDAT 0 LAST", CMD_BDAT);
    CHECK_INT(cmd.size, 0);
    CHECK(cmd.last);
    OK("BDAT 1234", CMD_BDAT);
    CHECK_INT(cmd.size, 1234);
    CHECK(!cmd.last);
    OK("bdat 9223372036854775807 last", CMD_BDAT);
    CHECK_INT(cmd.size, 9223372036854775807LL);
    CHECK(cmd.last);
    OK("BDAT 5   LAST", CMD_BDAT);
    CHECK(cmd.last);
    BAD("BDAT", "501 5.5.4");
    BAD("BDAT x", "501 5.5.4");
    BAD("BDAT -1", "501 5.5.4");
    BAD("BDAT +1", "501 5.5.4");
    BAD("BDAT 1x", "501 5.5.4");
    BAD("BDAT 9223372036854775808", "501 5.5.4");
    BAD("BDAT 1 LASTX", "501 5.5.4");
    BAD("BDAT 1 LAST x", "501 5.5.4");
    BAD("BDAT LAST", "501 5.5.4");
}

static void nul_bytes(void)
{
    static const char with_nul[] = "NOOP\0RSET";
    memcpy(line, with_nul, sizeof with_nul);
    CHECK_INT(smtp_cmd_parse(line, sizeof with_nul - 1, &cmd, &err), -1);
    CHECK_PREFIX(err, "500 5.5.2");
    static const char nul_in_path[] = "RCPT TO:<a\0b@example.test>";
    memcpy(line, nul_in_path, sizeof nul_in_path);
    CHECK_INT(smtp_cmd_parse(line, sizeof nul_in_path - 1, &cmd, &err), -1);
    CHECK_PREFIX(err, "500 5.5.2");
    static const char nul_at_end[] = "QUIT\0";
    memcpy(line, nul_at_end, sizeof nul_at_end);
    CHECK_INT(smtp_cmd_parse(line, sizeof nul_at_end - 1, &cmd, &err), -1);
    CHECK_PREFIX(err, "500 5.5.2");
}

static void trailing_spaces(void)
{
    OK("QUIT   ", CMD_QUIT);
    OK("DATA ", CMD_DATA);
    OK("EHLO client.example.net  ", CMD_EHLO);
    CHECK_STR(cmd.arg, "client.example.net");
    OK("MAIL FROM:<a@example.net>   ", CMD_MAIL);
    CHECK_STR(cmd.path, "a@example.net");
    OK("MAIL FROM:<a@example.net> SIZE=9 ", CMD_MAIL);
    CHECK_INT(cmd.size, 9);
    OK("RCPT TO:<user@example.test> ", CMD_RCPT);
    CHECK_STR(cmd.path, "user@example.test");
}

int main(void)
{
    every_verb();
    case_insensitive();
    paths();
    mail_params();
    smtputf8();
    dsn_params();
    bad_syntax();
    bdat();
    nul_bytes();
    trailing_spaces();
    return CHECK_DONE();
}
