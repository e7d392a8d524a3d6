/* The evaluator's plan, table-driven (Postfix's golden-transcript style): each case is an
 * envelope and a small rule set; the expected plan is what became of each recipient, how many
 * Maildir copies were staged, which jobs were planned, the DSN and the reply. Nothing here
 * touches the network: post-acceptance actions are only planned (the webhook URL is never
 * contacted), and the commit writes into a private temporary directory. */
#include "check.h"

#include "config/config.h"
#include "core/message.h"
#include "delivery/commit.h"
#include "delivery/plan.h"
#include "rules/eval.h"
#include "rules/ruleset.h"
#include "spool/spool.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define STORE "store { maildir = \"var/mail/{domain}/{user}\" }"
#define HOOK "webhook { url = \"http://127.0.0.1:9/hook\""

struct eval_case {
    const char *name;
    const char *rules; /* the rule_set "main" body */
    const char *from;  /* MAIL FROM */
    const char *rcpts[3];
    const char *subject;
    enum verdict spf;
    /* the expected plan */
    const char *outcomes; /* per recipient: A accepted, R refused, D dropped, U undelivered */
    const char *reply;    /* prefix of the reply, before the commit */
    int copies;           /* Maildir copies staged */
    const char *jobs;     /* action type and policy of each planned job: "webhook:retry," */
    const char *dsn;      /* plan->dsn (NULL: no partial refusal) */
    const char *applied;  /* the rules that applied, comma separated */
    const char *commit;   /* prefix of the reply after the commit */
    enum undelivered_policy undelivered; /* server.undelivered (default reject) */
};

static const struct eval_case cases[] = {
    {"store for the recipient",
     "rule { name = \"keep\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "A",
     "250 ",
     1,
     "",
     NULL,
     "keep",
     "250 ",
     UNDELIVERED_REJECT},
    {"recipients select the rule",
     "rule { name = \"vip\", recipients = { \"vip@example.test\" }, actions = { " STORE " } },"
     "rule { name = \"all\", recipients = { \"example.test\" }, actions = { add_header { name = "
     "\"X-A\", value = \"1\" } } }",
     "a@sender.test",
     {"vip@example.test", "other@example.test"},
     "hello",
     VERDICT_GRAY,
     "AU",
     "250 ",
     1,
     "",
     "not sent: sender not authenticated (no SPF pass, no aligned DKIM pass)",
     "vip,all",
     "250 ",
     UNDELIVERED_REJECT},
    {"a recipient no rule delivers for is undelivered: refused (reject, the default)",
     "rule { name = \"vip\", recipients = { \"vip@example.test\" }, actions = { " STORE " } }",
     "a@sender.test",
     {"nobody@example.test"},
     "hello",
     VERDICT_GRAY,
     "U",
     "550 5.1.1 <nobody@example.test>: no rule delivers mail for this recipient",
     0,
     "",
     NULL,
     "",
     "550 5.1.1 <nobody@example.test>",
     UNDELIVERED_REJECT},
    {"undelivered with accept: accepted and kept nowhere, as before the policy",
     "rule { name = \"vip\", recipients = { \"vip@example.test\" }, actions = { " STORE " } }",
     "a@sender.test",
     {"nobody@example.test"},
     "hello",
     VERDICT_GRAY,
     "U",
     "250 ",
     0,
     "",
     NULL,
     "",
     "250 ",
     UNDELIVERED_ACCEPT},
    {"undelivered with tempfail: 451 for the message, the other copy taken back",
     "rule { name = \"vip\", recipients = { \"vip@example.test\" }, actions = { " STORE " } }",
     "a@sender.test",
     {"vip@example.test", "nobody@example.test"},
     "hello",
     VERDICT_GRAY,
     "AU",
     "451 4.3.0 <nobody@example.test>: no rule delivers mail for this recipient, try again later",
     1,
     "",
     NULL,
     "vip",
     "451 4.3.0 <nobody@example.test>",
     UNDELIVERED_TEMPFAIL},
    {"conditions exclude the only store: undelivered, refused",
     "rule { name = \"authenticated\", when = { spf = \"PASS\" }, actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "U",
     "550 5.1.1 <user@example.test>",
     0,
     "",
     NULL,
     "",
     "550 5.1.1 <user@example.test>",
     UNDELIVERED_REJECT},
    {"a stop before the store: undelivered",
     "rule { name = \"first\", actions = { add_header { name = \"X-A\", value = \"1\" }, stop {} } "
     "},"
     "rule { name = \"second\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "U",
     "550 5.1.1 <user@example.test>",
     0,
     "",
     NULL,
     "first",
     "550 5.1.1 <user@example.test>",
     UNDELIVERED_REJECT},
    {"an explicit drop is not undelivered",
     "rule { name = \"discard\", actions = { drop {} } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "D",
     "250 ",
     0,
     "",
     NULL,
     "discard",
     "250 ",
     UNDELIVERED_REJECT},
    {"a webhook alone delivers nothing: tempfail, and the planned job is not spooled",
     "rule { name = \"notify\", actions = { " HOOK " } } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "U",
     "451 4.3.0 <user@example.test>",
     0,
     "webhook:retry,",
     NULL,
     "notify",
     "451 4.3.0 <user@example.test>",
     UNDELIVERED_TEMPFAIL},
    {"when holds: bounce",
     "rule { name = \"no-invoices\", when = { subject = { contains = \"invoice\" } }, actions = "
     "{ bounce { message = \"No invoices\" } } },"
     "rule { name = \"keep\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "your invoice",
     VERDICT_GRAY,
     "R",
     "550 ",
     0,
     "",
     NULL,
     "no-invoices",
     "550 ",
     UNDELIVERED_REJECT},
    {"when does not hold: skipped",
     "rule { name = \"spf-fail\", when = { spf = \"FAIL\" }, actions = { bounce {} } },"
     "rule { name = \"keep\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_PASS,
     "A",
     "250 ",
     1,
     "",
     NULL,
     "keep",
     "250 ",
     UNDELIVERED_REJECT},
    {"unless holds: skipped",
     "rule { name = \"strangers\", unless = { spf = \"PASS\" }, actions = { bounce {} } },"
     "rule { name = \"keep\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_PASS,
     "A",
     "250 ",
     1,
     "",
     NULL,
     "keep",
     "250 ",
     UNDELIVERED_REJECT},
    {"unless does not hold: bounce",
     "rule { name = \"strangers\", unless = { spf = \"PASS\" }, actions = { bounce {} } },"
     "rule { name = \"keep\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_FAIL,
     "R",
     "5",
     0,
     "",
     NULL,
     "strangers",
     "5",
     UNDELIVERED_REJECT},
    {"stop ends the chain",
     "rule { name = \"first\", actions = { " STORE ", stop {} } },"
     "rule { name = \"second\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "A",
     "250 ",
     1,
     "",
     NULL,
     "first",
     "250 ",
     UNDELIVERED_REJECT},
    {"stop scope rule ends the rule only",
     "rule { name = \"first\", actions = { stop { scope = \"rule\" }, " STORE " } },"
     "rule { name = \"second\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "A",
     "250 ",
     1,
     "",
     NULL,
     "first,second",
     "250 ",
     UNDELIVERED_REJECT},
    {"several rules apply in order, each adding its copy and job",
     "rule { name = \"a\", actions = { add_header { name = \"X-A\", value = \"1\" } } },"
     "rule { name = \"b\", actions = { " STORE " } },"
     "rule { name = \"c\", actions = { " HOOK " } } }",
     "a@sender.test",
     {"u1@example.test", "u2@example.test"},
     "hello",
     VERDICT_GRAY,
     "AA",
     "250 ",
     2,
     "webhook:retry,",
     NULL,
     "a,b,c",
     "250 ",
     UNDELIVERED_REJECT},
    {"partial bounce from an authenticated sender: a DSN",
     "rule { name = \"bob\", recipients = { \"bob@example.test\" }, actions = { bounce {} } },"
     "rule { name = \"keep\", actions = { " STORE " } }",
     "a@sender.test",
     {"bob@example.test", "user@example.test"},
     "hello",
     VERDICT_PASS,
     "RA",
     "250 ",
     1,
     "",
     "queued",
     "bob,keep",
     "250 ",
     UNDELIVERED_REJECT},
    {"partial bounce from an unauthenticated sender: no DSN",
     "rule { name = \"bob\", recipients = { \"bob@example.test\" }, actions = { bounce {} } },"
     "rule { name = \"keep\", actions = { " STORE " } }",
     "a@sender.test",
     {"bob@example.test", "user@example.test"},
     "hello",
     VERDICT_FAIL,
     "RA",
     "250 ",
     1,
     "",
     "not sent: sender not authenticated (no SPF pass, no aligned DKIM pass)",
     "bob,keep",
     "250 ",
     UNDELIVERED_REJECT},
    {"partial bounce from the null sender: no DSN",
     "rule { name = \"bob\", recipients = { \"bob@example.test\" }, actions = { bounce {} } },"
     "rule { name = \"keep\", actions = { " STORE " } }",
     "",
     {"bob@example.test", "user@example.test"},
     "hello",
     VERDICT_PASS,
     "RA",
     "250 ",
     1,
     "",
     "not sent: null sender",
     "bob,keep",
     "250 ",
     UNDELIVERED_REJECT},
    {"on_failure continue: the rest of the rule runs",
     "rule { name = \"r\", actions = { lua { script = \"fail.lua\", on_failure = \"continue\" "
     "}, " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "A",
     "250 ",
     1,
     "",
     NULL,
     "r",
     "250 ",
     UNDELIVERED_REJECT},
    {"on_failure drop: nothing more for the rule's recipients, in any rule",
     "rule { name = \"r\", recipients = { \"user@example.test\" }, actions = { lua { script = "
     "\"fail.lua\", on_failure = \"drop\" }, " STORE " } },"
     "rule { name = \"later\", actions = { " STORE " } }",
     "a@sender.test",
     {"user@example.test", "other@example.test"},
     "hello",
     VERDICT_GRAY,
     "DA",
     "250 ",
     1,
     "",
     NULL,
     "r,later",
     "250 ",
     UNDELIVERED_REJECT},
    {"on_failure tempfail (the default in the session): the message fails",
     "rule { name = \"r\", actions = { " STORE ", lua { script = \"fail.lua\" } } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "A",
     "451 4.3.0",
     1,
     "",
     NULL,
     "r",
     "451 4.3.0",
     UNDELIVERED_REJECT},
    {"on_failure retry and continue: planned jobs with their policy",
     "rule { name = \"r\", actions = { " HOOK ", on_failure = \"retry\" }, " HOOK
     ", on_failure = \"continue\" }, " STORE " } }",
     "a@sender.test",
     {"user@example.test"},
     "hello",
     VERDICT_GRAY,
     "A",
     "250 ",
     1,
     "webhook:retry,webhook:continue,",
     NULL,
     "r",
     "250 ",
     UNDELIVERED_REJECT},
};

static const char *config_text = "server {\n"
                                 "  listen = { \"127.0.0.1:2525\" },\n"
                                 "  hostname = \"mx.example.test\",\n"
                                 "  domains = { \"example.test\" },\n"
                                 "  data_dir = \"var\",\n"
                                 "  auth_checks = false,\n"
                                 "}\n"
                                 "rule_set \"main\" { %s }\n";

static void write_file(const char *path, const char *fmt, const char *arg)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fprintf(f, fmt, arg);
    fclose(f);
}

static void run_case(const struct eval_case *c)
{
    fprintf(stderr, "case: %s\n", c->name);
    write_file("sluice.lua", config_text, c->rules);
    char err[1024];
    struct config *cfg = config_load("sluice.lua", err, sizeof err);
    CHECK(cfg != NULL);
    if (!cfg) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    const struct rule_set *rs = config_find_rule_set(cfg, "main");
    struct message *m = message_new(NULL);
    message_make_qid(m->env.qid, sizeof m->env.qid);
    m->hostname = cfg->server.hostname;
    m->env.mail_from = strdup(c->from);
    m->env.helo = strdup("client.test");
    m->env.verdicts.spf = c->spf;
    snprintf(m->env.client_ip, sizeof m->env.client_ip, "192.0.2.1");
    buf_printf(&m->body, "Subject: %s\r\nFrom: <a@sender.test>\r\n\r\nbody\r\n", c->subject);
    for (size_t i = 0; i < 3 && c->rcpts[i]; i++)
        message_add_rcpt(m, c->rcpts[i]);

    struct plan p;
    rules_evaluate(
        rs, m,
        &(struct rules_settings){cfg->server.hostname, cfg->server.bounce_relay, c->undelivered},
        &p);

    char got[8] = "";
    for (size_t i = 0; i < m->env.nrcpts && i < sizeof got - 1; i++)
        got[i] = p.outcomes[i].undelivered ? 'U'
                 : p.outcomes[i].refused   ? 'R'
                 : p.outcomes[i].dropped   ? 'D'
                                           : 'A';
    got[m->env.nrcpts < sizeof got ? m->env.nrcpts : sizeof got - 1] = '\0';
    CHECK_STR(got, c->outcomes);
    CHECK_PREFIX(p.reply, c->reply);
    CHECK_INT(p.copies.n, c->copies);
    struct buf jobs = {0};
    for (size_t i = 0; i < p.njobs; i++)
        buf_printf(&jobs, "%s:%s,", p.jobs[i]->action_type,
                   p.jobs[i]->on_failure == ON_FAILURE_CONTINUE ? "continue" : "retry");
    CHECK_STR(buf_cstr(&jobs), c->jobs);
    buf_free(&jobs);
    CHECK_STR(p.dsn, c->dsn);
    CHECK_INT(p.dsn_job != NULL, c->dsn && strcmp(c->dsn, "queued") == 0);
    CHECK_STR(buf_cstr(&p.rules), c->applied);
    CHECK_INT(p.failed, c->reply[0] == '4');

    int planned = 0;
    for (const char *s = c->jobs; *s; s++)
        planned += *s == ',';
    planned += p.dsn_job != NULL;
    /* The commit keeps its promise: no staged file is left in tmp/ (each is in new/, or gone),
     * and after a 2xx every job is durable and handed back, the DSN with them. */
    const char *reply = delivery_commit(&p, m, cfg->server.data_dir);
    CHECK_PREFIX(reply, c->commit);
    for (size_t i = 0; i < p.copies.n; i++)
        CHECK(access(p.copies.items[i].tmp_path, F_OK) != 0);
    CHECK_INT(p.njobs, reply[0] == '2' ? planned : 0);
    plan_free(&p);
    message_free(m);
    config_release(cfg);
}

int main(void)
{
    g_mime_init(); /* the subject condition decodes RFC 2047 words, as sluice does */
    char dir[] = "/tmp/sluice-eval-plan-XXXXXX";
    if (!mkdtemp(dir) || chdir(dir) < 0) {
        perror("mkdtemp");
        return 2;
    }
    write_file("fail.lua", "%s", "function handler() error(\"boom\") end\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i]);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return CHECK_DONE();
}
