/* The envelope's JSON form: every field survives a round trip (NULL rDNS and HELO, the null
 * sender, UTF-8, many recipients), and each missing or mistyped field is refused by name. And
 * where it is embedded: a message starts as a copy of the session's client envelope (a fresh
 * queue id) or of a spooled job's (its own), and a spool job copies the message's with only the
 * rule's recipients. */
#include "check.h"
#include "core/envelope.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "spool/spool.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void fill(struct envelope *e)
{
    envelope_init(e);
    snprintf(e->qid, sizeof e->qid, "%s", "0123456789ABCDEF");
    e->arrival = 1700000123;
    snprintf(e->client_ip, sizeof e->client_ip, "%s", "2001:db8::25");
    e->client_port = 65535;
    e->client_rdns = xstrdup("mx.exämple.net");
    e->helo = xstrdup("client.example.net");
    e->esmtp = true;
    e->tls = true;
    snprintf(e->tls_version, sizeof e->tls_version, "%s", "TLSv1.3");
    snprintf(e->tls_cipher, sizeof e->tls_cipher, "%s", "TLS_AES_256_GCM_SHA384");
    e->mail_from = xstrdup("jörg@example.net");
    for (int i = 0; i < 300; i++) {
        char a[64];
        snprintf(a, sizeof a, "user%d@ünicode.example.test", i);
        if (i % 3 == 0)
            envelope_add_rcpt(e, a);
        else
            envelope_add_rcpt_dsn(e, a, i % 3 == 1 ? DSN_NOTIFY_NEVER : DSN_NOTIFY_FAILURE,
                                  i % 3 == 1 ? NULL : "rfc822;ö@example.org");
    }
    e->smtputf8 = true;
    e->ret = DSN_RET_HDRS;
    e->dsn_envid = xstrdup("env+id=1");
    e->verdicts = (struct verdicts){VERDICT_PASS,  VERDICT_FAIL,
                                    VERDICT_GRAY,  VERDICT_PROCESSING_FAILED,
                                    VERDICT_UNSET, DMARC_POLICY_QUARANTINE};
}

static void check_same(const struct envelope *a, const struct envelope *b)
{
    CHECK_STR(a->qid, b->qid);
    CHECK_INT(a->arrival, b->arrival);
    CHECK_STR(a->client_ip, b->client_ip);
    CHECK_INT(a->client_port, b->client_port);
    CHECK_STR(a->client_rdns, b->client_rdns);
    CHECK_STR(a->helo, b->helo);
    CHECK_INT(a->esmtp, b->esmtp);
    CHECK_INT(a->tls, b->tls);
    CHECK_STR(a->tls_version, b->tls_version);
    CHECK_STR(a->tls_cipher, b->tls_cipher);
    CHECK_STR(a->mail_from, b->mail_from);
    CHECK_INT(a->nrcpts, b->nrcpts);
    for (size_t i = 0; i < a->nrcpts && i < b->nrcpts; i++) {
        CHECK_STR(a->rcpts[i], b->rcpts[i]);
        CHECK_INT(a->rcpt_dsn[i].notify, b->rcpt_dsn[i].notify);
        CHECK_STR(a->rcpt_dsn[i].orcpt, b->rcpt_dsn[i].orcpt);
    }
    CHECK_INT(a->smtputf8, b->smtputf8);
    CHECK_INT(a->ret, b->ret);
    CHECK_STR(a->dsn_envid, b->dsn_envid);
    CHECK_INT(a->verdicts.spf, b->verdicts.spf);
    CHECK_INT(a->verdicts.dkim, b->verdicts.dkim);
    CHECK_INT(a->verdicts.dmarc, b->verdicts.dmarc);
    CHECK_INT(a->verdicts.spam, b->verdicts.spam);
    CHECK_INT(a->verdicts.virus, b->verdicts.virus);
    CHECK_INT(a->verdicts.dmarc_policy, b->verdicts.dmarc_policy);
}

/* Through text, as a spool file holds it. */
static void round_trip(const struct envelope *e)
{
    json_t *o = envelope_to_json(e);
    CHECK(o != NULL);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    json_t *back = json_loads(text, 0, NULL);
    free(text);
    struct envelope got;
    char err[200] = "";
    CHECK_INT(envelope_from_json(&got, back, err, sizeof err), 0);
    CHECK_STR(err, "");
    check_same(&got, e);
    envelope_free(&got);
    json_decref(back);
}

static void test_round_trips(void)
{
    struct envelope e, copy;
    fill(&e);
    round_trip(&e);
    envelope_copy(&copy, &e);
    check_same(&copy, &e);
    envelope_free(&e);
    round_trip(&copy);

    /* Unknown rDNS, no HELO, the null sender, no recipients, nothing judged. */
    envelope_free(&copy);
    snprintf(copy.qid, sizeof copy.qid, "%s", "Q");
    copy.mail_from = xstrdup("");
    round_trip(&copy);
    envelope_free(&copy);
    CHECK(copy.mail_from == NULL && copy.nrcpts == 0);
}

/* Each field, first removed and then replaced by a value of the wrong type. */
static void test_rejects(void)
{
    static const struct {
        const char *key, *bad_json, *name;
    } cases[] = {
        {"qid", "1", "qid"},
        {"arrival", "\"now\"", "arrival"},
        {"client_ip", "null", "client_ip"},
        {"client_port", "true", "client_port"},
        {"client_rdns", "7", "client_rdns"},
        {"helo", "[]", "helo"},
        {"esmtp", "1", "esmtp"},
        {"tls", "\"yes\"", "tls"},
        {"tls_version", "2", "tls_version"},
        {"tls_cipher", "{}", "tls_cipher"},
        {"mail_from", "null", "mail_from"},
        {"rcpts", "\"a@b\"", "rcpts"},
        {"verdicts", "[]", "verdicts"},
    };
    struct envelope e;
    fill(&e);
    json_t *good = envelope_to_json(&e);
    envelope_free(&e);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[100], err[200];
        for (int mistyped = 0; mistyped < 2; mistyped++) {
            json_t *o = json_deep_copy(good);
            if (mistyped)
                json_object_set_new(o, cases[i].key,
                                    json_loads(cases[i].bad_json, JSON_DECODE_ANY, NULL));
            else
                json_object_del(o, cases[i].key);
            struct envelope got;
            err[0] = 0;
            CHECK_INT(envelope_from_json(&got, o, err, sizeof err), -1);
            snprintf(want, sizeof want, "envelope field '%s' ", cases[i].name);
            CHECK_PREFIX(err, want);
            CHECK(got.helo == NULL && got.rcpts == NULL && got.mail_from == NULL);
            json_decref(o);
        }
    }

    /* Inside the nested parts, and too long for the fixed buffers. */
    const char *nested[][3] = {
        {"verdicts", "{\"spf\":\"PASS\"}", "envelope field 'dkim' "},
        {"verdicts",
         "{\"spf\":\"PASS\",\"dkim\":\"PASS\",\"dmarc\":\"PASS\",\"spam\":\"PASS\",\"virus\":"
         "\"PASS\",\"dmarc_policy\":\"MAYBE\"}",
         "envelope field 'dmarc_policy' "},
        {"rcpts", "[\"a@b\", 3]", "envelope field 'rcpts' "},
        {"qid", "\"0123456789012345678901234567890\"", "envelope field 'qid' is too long"},
        {"client_port", "70000", "envelope field 'client_port' "},
        {"smtputf8", "1", "envelope field 'smtputf8' "},
        {"dsn_ret", "\"BODY\"", "envelope field 'dsn_ret' "},
        {"dsn_envid", "5", "envelope field 'dsn_envid' "},
        {"rcpt_dsn", "[]", "envelope field 'rcpt_dsn' "},
    };
    for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++) {
        json_t *o = json_deep_copy(good);
        json_object_set_new(o, nested[i][0], json_loads(nested[i][1], JSON_DECODE_ANY, NULL));
        struct envelope got;
        char err[200] = "";
        CHECK_INT(envelope_from_json(&got, o, err, sizeof err), -1);
        CHECK_PREFIX(err, nested[i][2]);
        json_decref(o);
    }

    /* Job files written before SMTPUTF8 and DSN lack those fields: defaults, not errors. */
    json_t *old = json_deep_copy(good);
    const char *added[] = {"smtputf8", "dsn_ret", "dsn_envid", "rcpt_dsn"};
    for (size_t i = 0; i < 4; i++)
        json_object_del(old, added[i]);
    struct envelope got;
    char err[200] = "";
    CHECK_INT(envelope_from_json(&got, old, err, sizeof err), 0);
    CHECK_INT(got.smtputf8, 0);
    CHECK_INT(got.ret, DSN_RET_UNSPECIFIED);
    CHECK(got.dsn_envid == NULL);
    CHECK(got.nrcpts == 300 && got.rcpt_dsn[1].notify == 0 && got.rcpt_dsn[2].orcpt == NULL);
    envelope_free(&got);
    json_decref(old);
    json_decref(good);
}

static void test_embedded(void)
{
    /* The session's: the client only, no queue id yet. */
    struct envelope client;
    fill(&client);
    client.qid[0] = '\0';
    client.arrival = 0;
    free(client.mail_from);
    client.mail_from = NULL;
    for (size_t i = 0; i < client.nrcpts; i++) {
        free(client.rcpts[i]);
        free(client.rcpt_dsn[i].orcpt);
    }
    client.nrcpts = 0;
    time_t before = time(NULL);
    struct message *m = message_new(&client);
    CHECK_INT(strlen(m->env.qid), 18);
    CHECK(m->env.arrival >= before && m->env.arrival <= time(NULL));
    struct message *m2 = message_new(&client);
    CHECK(strcmp(m->env.qid, m2->env.qid) != 0);
    message_free(m2);
    envelope_free(&client); /* the message owns copies */
    CHECK_STR(m->env.client_rdns, "mx.exämple.net");
    CHECK_STR(m->env.helo, "client.example.net");
    CHECK_INT(m->env.client_port, 65535);
    CHECK_STR(m->env.tls_cipher, "TLS_AES_256_GCM_SHA384");
    CHECK(m->env.mail_from == NULL && m->env.nrcpts == 0);
    m->env.mail_from = xstrdup("a@example.net");
    message_add_rcpt(m, "r0@example.test");
    message_add_rcpt(m, "r1@example.test");
    message_add_rcpt(m, "r2@example.test");

    /* A job for the rule that matched r2 and r0: everything but the recipients is the
     * message's. */
    size_t matched[] = {2, 0};
    struct spool_job *j = spool_job_new(m, "main", "notify", 1, "webhook", matched, 2, 3);
    struct envelope want;
    envelope_copy(&want, &m->env);
    for (size_t i = 0; i < want.nrcpts; i++)
        free(want.rcpts[i]);
    want.nrcpts = 0;
    envelope_add_rcpt(&want, "r2@example.test");
    envelope_add_rcpt(&want, "r0@example.test");
    check_same(&j->env, &want);
    char id[64];
    snprintf(id, sizeof id, "%s-3", m->env.qid);
    CHECK_STR(j->id, id);
    envelope_free(&want);

    /* A message rebuilt from the job (the async Lua action) keeps its queue id and arrival. */
    struct message *again = message_new(&j->env);
    check_same(&again->env, &j->env);
    message_free(again);
    spool_job_free(j);
    message_free(m);
}

int main(void)
{
    test_round_trips();
    test_rejects();
    test_embedded();
    return CHECK_DONE();
}
