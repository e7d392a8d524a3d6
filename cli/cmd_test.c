/* `sluice test`: runs one message through the RCPT checks, the authentication checks (or the
 * verdicts given), and a rule set, and prints a trace: each rule, whether it applied and why
 * not, each action with its parameters resolved, and the reply to DATA. Nothing is written or
 * sent unless --apply is given. (Dovecot's sieve-test is the model.) */
#include "cli/commands.h"
#include "auth/auth.h"
#include "auth/dns.h"
#include "delivery/smtp_client.h"
#include "config/config.h"
#include "core/address.h"
#include "core/message.h"
#include "core/verdict.h"
#include "core/xalloc.h"
#include "delivery/commit.h"
#include "actions/action.h"
#include "rules/eval.h"
#include "rules/metrics.h"
#include "rules/rcpt_judge.h"
#include "rules/ruleset.h"
#include "scan/scan.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_args {
    const char *config;
    const char *rule_set;
    const char *from;
    char **to;
    size_t nto;
    const char *ip;
    const char *helo;
    int tls;
    const char *verdicts;
    int json;
    int apply;
    const char *file;
};

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: sluice test -c FILE [--rule-set NAME] --from ADDR --to ADDR [--to ADDR ...]\n"
        "                   [--ip IP] [--helo NAME] [--tls] [--verdicts spf=PASS,dkim=FAIL,...]\n"
        "                   [--json] [--apply] MESSAGE.eml|-\n");
}

static int parse_args(int argc, char **argv, struct test_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"rule-set", required_argument, NULL, 'r'},
        {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 't'},
        {"ip", required_argument, NULL, 'i'},     {"helo", required_argument, NULL, 'H'},
        {"tls", no_argument, NULL, 'T'},          {"verdicts", required_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},         {"apply", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    *a = (struct test_args){.ip = "127.0.0.1", .helo = "localhost", .from = ""};
    int c;
    size_t cap = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            a->config = optarg;
            break;
        case 'r':
            a->rule_set = optarg;
            break;
        case 'f':
            a->from = optarg;
            break;
        case 't':
            a->to = xgrow(a->to, sizeof *a->to, &cap, a->nto);
            a->to[a->nto++] = optarg;
            break;
        case 'i':
            a->ip = optarg;
            break;
        case 'H':
            a->helo = optarg;
            break;
        case 'T':
            a->tls = 1;
            break;
        case 'v':
            a->verdicts = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'a':
            a->apply = 1;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (!a->config || a->nto == 0 || optind != argc - 1) {
        usage(stderr);
        return -1;
    }
    a->file = argv[optind];
    return 0;
}

/* The message file, with bare LF line ends turned into CRLF (.eml files often have LF). */
static int read_message(const char *path, struct buf *out)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return -1;
    int c, prev = 0;
    while ((c = getc(f)) != EOF) {
        if (c == '\n' && prev != '\r')
            buf_append(out, "\r", 1);
        char ch = (char)c;
        buf_append(out, &ch, 1);
        prev = c;
    }
    if (f != stdin)
        fclose(f);
    return 0;
}

/* "spf=PASS,dkim=FAIL,dmarc_policy=REJECT": sets the verdicts given; *given gets a bit per
 * field (1 spf, 2 dkim, 4 dmarc, 8 spam, 16 virus). */
static int parse_verdicts(const char *text, struct verdicts *v, int *given, char *err,
                          size_t errlen)
{
    char *copy = xstrdup(text), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(err, errlen, "--verdicts: '%s' is not name=VALUE", item);
            rc = -1;
            break;
        }
        *eq = '\0';
        static const char *const names[] = {"spf", "dkim", "dmarc", "spam", "virus"};
        enum verdict *fields[] = {&v->spf, &v->dkim, &v->dmarc, &v->spam, &v->virus};
        int found = 0;
        for (int i = 0; i < 5; i++) {
            if (strcmp(item, names[i]) != 0)
                continue;
            found = 1;
            *given |= 1 << i;
            if (verdict_parse(eq + 1, fields[i]) < 0) {
                snprintf(err, errlen,
                         "--verdicts: %s=%s is not PASS, FAIL, GRAY or "
                         "PROCESSING_FAILED",
                         item, eq + 1);
                rc = -1;
            }
        }
        if (!found && strcmp(item, "dmarc_policy") == 0) {
            found = 1;
            if (dmarc_policy_parse(eq + 1, &v->dmarc_policy) < 0) {
                snprintf(err, errlen,
                         "--verdicts: dmarc_policy=%s is not NONE, QUARANTINE or "
                         "REJECT",
                         eq + 1);
                rc = -1;
            }
        }
        if (!found) {
            snprintf(err, errlen,
                     "--verdicts: unknown verdict '%s' (spf, dkim, dmarc, "
                     "dmarc_policy, spam, virus)",
                     item);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

static void print_plain(json_t *r)
{
    printf("sluice test: %s, rule set \"%s\"%s\n", json_string_value(json_object_get(r, "config")),
           json_string_value(json_object_get(r, "rule_set")),
           json_is_true(json_object_get(r, "applied")) ? " (--apply: actions were run)" : "");
    json_t *e = json_object_get(r, "envelope");
    printf("envelope: from <%s> helo %s ip %s tls %s\n",
           json_string_value(json_object_get(e, "mail_from")),
           json_string_value(json_object_get(e, "helo")),
           json_string_value(json_object_get(e, "client_ip")),
           json_is_true(json_object_get(e, "tls")) ? "yes" : "no");
    json_t *v = json_object_get(r, "verdicts");
    printf("verdicts: spf=%s dkim=%s dmarc=%s dmarc_policy=%s spam=%s virus=%s\n",
           json_string_value(json_object_get(v, "spf")),
           json_string_value(json_object_get(v, "dkim")),
           json_string_value(json_object_get(v, "dmarc")),
           json_string_value(json_object_get(v, "dmarc_policy")),
           json_string_value(json_object_get(v, "spam")),
           json_string_value(json_object_get(v, "virus")));
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(r, "rcpt"), i, x)
        printf("RCPT TO:<%s>: %s\n", json_string_value(json_object_get(x, "address")),
               json_string_value(json_object_get(x, "reply")));
    json_array_foreach(json_object_get(r, "rules"), i, x)
    {
        int applied = json_is_true(json_object_get(x, "applied"));
        printf("rule %zu \"%s\" (line %lld): ", i + 1,
               json_string_value(json_object_get(x, "rule")),
               (long long)json_integer_value(json_object_get(x, "line")));
        if (!applied) {
            const char *why = json_string_value(json_object_get(x, "reason"));
            printf("%s%s\n", strncmp(why, "not reached", 11) == 0 ? "" : "skipped: ", why);
            continue;
        }
        printf("applies to");
        size_t k;
        json_t *rc;
        json_array_foreach(json_object_get(x, "recipients"), k, rc)
            printf(" %s", json_string_value(rc));
        printf("\n");
        json_t *act;
        json_array_foreach(json_object_get(x, "actions"), k, act)
        {
            json_t *err = json_object_get(act, "error");
            printf("  %zu) %s %s (line %lld): %s%s%s\n", k + 1,
                   json_string_value(json_object_get(act, "action")),
                   json_string_value(json_object_get(act, "params")),
                   (long long)json_integer_value(json_object_get(act, "line")),
                   json_string_value(json_object_get(act, "result")), err ? ": " : "",
                   err ? json_string_value(err) : "");
            size_t d;
            json_t *note;
            json_array_foreach(json_object_get(act, "detail"), d, note)
            {
                /* Multi-line notes (webhook bodies) are indented as a block. */
                const char *s = json_string_value(note);
                printf("       ");
                for (; *s; s++) {
                    putchar(*s);
                    if (*s == '\n')
                        printf("       ");
                }
                printf("\n");
            }
        }
    }
    json_array_foreach(json_object_get(r, "outcomes"), i, x)
    {
        const char *what = json_string_value(json_object_get(x, "outcome"));
        json_t *reply = json_object_get(x, "reply");
        printf("recipient %s: %s", json_string_value(json_object_get(x, "address")), what);
        if (strcmp(what, "undelivered") == 0)
            printf(" (no rule delivered, refused or dropped it; server.undelivered = \"%s\")",
                   json_string_value(json_object_get(x, "policy")));
        printf("%s%s\n", reply ? ": " : "", reply ? json_string_value(reply) : "");
    }
    printf("reply to DATA: %s\n", json_string_value(json_object_get(r, "reply")));
    if (!json_is_true(json_object_get(r, "applied")))
        printf("(dry run: nothing was written or sent; --apply runs the actions)\n");
}

static json_t *verdicts_json(const struct verdicts *v)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "spf", verdict_name(v->spf), "dkim",
                     verdict_name(v->dkim), "dmarc", verdict_name(v->dmarc), "dmarc_policy",
                     dmarc_policy_name(v->dmarc_policy), "spam", verdict_name(v->spam), "virus",
                     verdict_name(v->virus));
}

/* The trace: an observer of the evaluation that builds, per rule of the set, whether it applied
 * or why not, and each action run with its parameters, notes and result. */
struct trace {
    json_t *rules;   /* one object per rule of the set, in order */
    json_t *actions; /* the "actions" array of the rule applied last */
    json_t *detail;  /* the "detail" array of the action running */
};

static void trace_skipped(void *arg, size_t rule, const char *why)
{
    struct trace *t = arg;
    json_object_set_new(json_array_get(t->rules, rule), "reason", json_string(why));
}

static void trace_applied(void *arg, size_t rule, const struct message *m, const size_t *rcpts,
                          size_t n)
{
    struct trace *t = arg;
    json_t *r = json_array_get(t->rules, rule);
    json_object_set_new(r, "applied", json_true());
    json_object_set_new(r, "reason", json_string("applies"));
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_string(m->env.rcpts[rcpts[i]]));
    json_object_set_new(r, "recipients", list);
    t->actions = json_object_get(r, "actions");
}

static void trace_action_started(void *arg, const struct action *a)
{
    struct trace *t = arg;
    struct buf d = {0};
    if (a->type->describe)
        a->type->describe(a->state, &d);
    json_t *entry = json_pack("{s:s, s:i, s:s, s:[]}", "action", a->type->name, "line", a->line,
                              "params", buf_cstr(&d), "detail");
    buf_free(&d);
    json_array_append_new(t->actions, entry);
    t->detail = json_object_get(entry, "detail");
}

static void trace_note(void *arg, const char *text)
{
    struct trace *t = arg;
    if (t->detail)
        json_array_append_new(t->detail, json_string(text));
}

static void trace_action_done(void *arg, const struct action *a, const char *result,
                              const char *error)
{
    struct trace *t = arg;
    json_t *entry = json_array_get(t->actions, json_array_size(t->actions) - 1);
    json_object_set_new(entry, "result", json_string(result));
    if (error)
        json_object_set_new(entry, "error", json_string(error));
    t->detail = NULL;
}

static json_t *trace_skeleton(const struct rule_set *rs)
{
    json_t *t = json_array();
    for (size_t i = 0; i < rs->nrules; i++)
        json_array_append_new(t, json_pack("{s:s, s:i, s:b, s:s, s:[]}", "rule", rs->rules[i]->name,
                                           "line", rs->rules[i]->line, "applied", 0, "reason",
                                           "no recipient matches", "actions"));
    return t;
}

/* What became of each recipient after the chain: "delivered" (a delivering action ran for it),
 * "refused", "dropped", or "undelivered" (nothing settled it) with what server.undelivered did. */
static json_t *outcomes_json(const struct message *m, const struct plan *p,
                             enum undelivered_policy policy)
{
    json_t *list = json_array();
    for (size_t i = 0; p->outcomes && i < m->env.nrcpts; i++) {
        const struct rcpt_outcome *o = &p->outcomes[i];
        const char *what = o->undelivered ? "undelivered"
                           : o->refused   ? "refused"
                           : o->dropped   ? "dropped"
                                          : "delivered";
        json_t *entry = json_pack("{s:s, s:s}", "address", m->env.rcpts[i], "outcome", what);
        if (o->undelivered)
            json_object_set_new(entry, "policy", json_string(undelivered_policy_name(policy)));
        if (o->refused)
            json_object_set_new(entry, "reply", json_string(o->reply));
        else if (o->undelivered && p->failed)
            json_object_set_new(entry, "reply", json_string(p->reply));
        json_array_append_new(list, entry);
    }
    return list;
}

int cmd_test(int argc, char **argv)
{
    struct test_args a;
    if (parse_args(argc, argv, &a) < 0)
        return 2;
    char err[1024];
    struct config *cfg = config_load(a.config, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        free(a.to);
        return 1;
    }
    smtp_client_set_helo(cfg->server.hostname); /* --apply may relay or send a DSN */
    int rc = 1;
    struct message *m = message_new(NULL);
    const struct rule_set *rs =
        a.rule_set ? config_find_rule_set(cfg, a.rule_set) : config_rule_set_for(cfg, NULL);
    if (!rs) {
        fprintf(stderr, "sluice test: no rule set \"%s\" in %s\n", a.rule_set, a.config);
        goto out;
    }
    if (read_message(a.file, &m->body) < 0) {
        fprintf(stderr, "sluice test: cannot read %s\n", a.file);
        goto out;
    }
    if (a.from[0] && !address_valid(a.from)) {
        fprintf(stderr, "sluice test: --from %s is not a valid address\n", a.from);
        goto out;
    }
    m->hostname = cfg->server.hostname;
    m->env.mail_from = xstrdup(a.from);
    m->env.helo = xstrdup(a.helo);
    m->env.esmtp = true;
    m->env.tls = a.tls;
    if (a.tls)
        snprintf(m->env.tls_version, sizeof m->env.tls_version, "TLSv1.3");
    snprintf(m->env.client_ip, sizeof m->env.client_ip, "%s", a.ip);

    json_t *report = json_object();
    json_t *rcpts = json_array();
    uint32_t *hits = NULL;
    size_t hcap = 0;
    const struct server_cfg *sc = &cfg->server;
    const struct rcpt_settings rcpt_st = {sc->domains, sc->ndomains, sc->undelivered};
    for (size_t i = 0; i < a.nto; i++) {
        enum rcpt_reject_reason why;
        char text[512];
        const char *refusal =
            address_valid(a.to[i])
                ? rcpt_judge(&rcpt_st, rs, a.to[i], a.tls, &hits, &hcap, &why, text, sizeof text)
                : "553 5.1.3 Bad recipient address syntax";
        json_array_append_new(rcpts, json_pack("{s:s, s:s}", "address", a.to[i], "reply",
                                               refusal ? refusal : "250 2.1.5 Ok"));
        if (!refusal)
            message_add_rcpt(m, a.to[i]);
    }
    free(hits);

    int given = 0;
    if (a.verdicts && parse_verdicts(a.verdicts, &m->env.verdicts, &given, err, sizeof err) < 0) {
        fprintf(stderr, "sluice test: %s\n", err);
        json_decref(report);
        json_decref(rcpts);
        goto out;
    }
    struct verdicts forced = m->env.verdicts;
    if ((given & 7) != 7 && cfg->server.auth_checks) {
        auth_check(cfg->server.hostname, &cfg->dns, cfg->dmarc.tree_walk, m);
        dns_thread_cleanup();
    }
    if ((given & 24) != 24)
        scan_message(&cfg->scan, rs, m);
    /* Verdicts given on the command line win over computed ones. */
    if (given & 1)
        m->env.verdicts.spf = forced.spf;
    if (given & 2)
        m->env.verdicts.dkim = forced.dkim;
    if (given & 4)
        m->env.verdicts.dmarc = forced.dmarc;
    if (given & 8)
        m->env.verdicts.spam = forced.spam;
    if (given & 16)
        m->env.verdicts.virus = forced.virus;
    if (forced.dmarc_policy)
        m->env.verdicts.dmarc_policy = forced.dmarc_policy;

    struct plan res;
    const char *reply = "554 5.5.1 Error: no valid recipients";
    struct trace trace = {.rules = trace_skeleton(rs)};
    const struct eval_observer observer = {.arg = &trace,
                                           .rule_skipped = trace_skipped,
                                           .rule_applied = trace_applied,
                                           .action_started = trace_action_started,
                                           .action_note = trace_note,
                                           .action_done = trace_action_done};
    struct eval_opts opts = {.dry_run = !a.apply, .deliver_inline = a.apply, .observer = &observer};
    if (m->env.nrcpts) {
        rules_evaluate_opts(
            rs, m, &(struct rules_settings){sc->hostname, sc->bounce_relay, sc->undelivered}, &opts,
            &res);
        reply = delivery_commit(&res, m, cfg->server.data_dir);
        json_object_set_new(report, "rules", trace.rules);
        json_object_set_new(report, "outcomes", outcomes_json(m, &res, sc->undelivered));
    } else {
        memset(&res, 0, sizeof res);
        json_decref(trace.rules);
        json_object_set_new(report, "rules", json_array());
        json_object_set_new(report, "outcomes", json_array());
    }
    json_object_set_new(report, "config", json_string(a.config));
    json_object_set_new(report, "rule_set", json_string(rs->name));
    json_object_set_new(report, "envelope",
                        json_pack("{s:s, s:s, s:s, s:b}", "mail_from", a.from, "helo", a.helo,
                                  "client_ip", a.ip, "tls", a.tls));
    json_object_set_new(report, "verdicts", verdicts_json(&m->env.verdicts));
    json_object_set_new(report, "rcpt", rcpts);
    json_object_set_new(report, "reply", json_string(reply));
    json_object_set_new(report, "applied", json_boolean(a.apply));
    if (a.json) {
        char *text = json_dumps(report, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
    } else {
        print_plain(report);
    }
    json_decref(report);
    if (m->env.nrcpts)
        plan_free(&res);
    rc = 0;
out:
    message_free(m);
    config_release(cfg);
    free(a.to);
    return rc;
}
