/* Prometheus text exposition format 0.0.4. Names follow SES (Received, PublishSuccess,
 * PublishFailure, PublishExpired) as sluice_rule_set_*, sluice_rule_* and sluice_action_*
 * counters; what each counts is defined in rules/metrics.h. */
#include "receiver/metrics_http.h"
#include "auth/dkim_key_cache.h"
#include "auth/dns.h"
#include "dmarc/dmarc_metrics.h"
#include "lua/script_metrics.h"
#include "config/config.h"
#include "core/histogram.h"
#include "core/prom_label.h"
#include "pipeline/verdict_stats.h"
#include "core/sockaddr.h"
#include "core/xalloc.h"
#include "pipeline/retry.h"
#include "receiver/server.h"
#include "receiver/smtp_stats.h"
#include "rules/metrics.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <lua.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void header(struct buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct rule_pass {
    struct buf *b;
    int want_sets; /* 1: rule-set rows, 0: rule rows */
    int field;
};

static const struct {
    const char *suffix;
    const char *help;
} rule_fields[] = {
    {"received_total", "Messages the rule set evaluated, or the rule applied to (SES Received)."},
    {"publish_success_total",
     "Actions done for a message, in the session or after acceptance (SES PublishSuccess)."},
    {"publish_failure_total",
     "Actions that failed for a message, once each, at the first failure (SES PublishFailure)."},
    {"publish_expired_total",
     "Post-acceptance actions given up after retries (SES PublishExpired)."},
};

static unsigned long long rule_value(const struct rule_stats *s, int field)
{
    return atomic_load(field == 0 ? &s->received : &s->publish[field - 1]);
}

static void put_rule_row(const struct rule_stats *s, void *arg)
{
    struct rule_pass *p = arg;
    if ((s->rule == NULL) != p->want_sets)
        return;
    buf_printf(p->b, "sluice_%s_%s{rule_set=\"", p->want_sets ? "rule_set" : "rule",
               rule_fields[p->field].suffix);
    prom_label_value(p->b, s->rule_set);
    if (s->rule) {
        buf_puts(p->b, "\",rule=\"");
        prom_label_value(p->b, s->rule);
    }
    buf_printf(p->b, "\"} %llu\n", rule_value(s, p->field));
}

struct action_pass {
    struct buf *b;
    int kind; /* 0 invocations, 1 + enum publish_outcome, or ACTION_PASS_HISTOGRAM */
};

struct spool_pass {
    struct buf *b;
    int kind; /* 0 retries, 1 expired, 2 dropped */
};

static void put_spool_counter(const struct action_stats *s, void *arg)
{
    struct spool_pass *p = arg;
    static const char *const names[] = {"retries", "expired", "dropped"};
    const atomic_ullong *v[] = {&s->spool_retries, &s->spool_expired, &s->spool_dropped};
    buf_printf(p->b, "sluice_spool_%s_total{action=\"", names[p->kind]);
    prom_label_value(p->b, s->action);
    buf_printf(p->b, "\"} %llu\n", (unsigned long long)atomic_load(v[p->kind]));
}

/* The spool's depth per action type: every type the counters know (0 when none waits), and
 * any type only the spool has (jobs of an action no longer configured). */
struct depth_pass {
    struct buf *b;
    struct retry_depth *d;
    size_t n;
    int *seen;
    int age; /* 0 jobs, 1 oldest age */
    time_t now;
};

static void put_depth(struct depth_pass *p, const char *action, const struct retry_depth *d)
{
    buf_printf(p->b, "sluice_spool_%s{action=\"", p->age ? "oldest_job_age_seconds" : "jobs");
    prom_label_value(p->b, action);
    if (p->age)
        buf_printf(p->b, "\"} %lld\n",
                   d && p->now > d->oldest ? (long long)(p->now - d->oldest) : 0LL);
    else
        buf_printf(p->b, "\"} %zu\n", d ? d->jobs : 0);
}

static void put_depth_row(const struct action_stats *s, void *arg)
{
    struct depth_pass *p = arg;
    const struct retry_depth *d = NULL;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->d[i].action, s->action) == 0) {
            d = &p->d[i];
            p->seen[i] = 1;
        }
    put_depth(p, s->action, d);
}

static void put_spool(struct server *srv, struct buf *b)
{
    struct spool_pass sp = {b, 0};
    header(b, "sluice_spool_retries_total", "counter",
           "Post-acceptance jobs rescheduled after a failed attempt, by action type.");
    metrics_action_foreach(put_spool_counter, &sp);
    sp.kind = 1;
    header(b, "sluice_spool_expired_total", "counter",
           "Post-acceptance jobs given up (expire_after passed, or the action left the config), "
           "by action type.");
    metrics_action_foreach(put_spool_counter, &sp);
    sp.kind = 2;
    header(b, "sluice_spool_dropped_total", "counter",
           "Post-acceptance jobs an operator removed with sluice spool drop, by action type.");
    metrics_action_foreach(put_spool_counter, &sp);
    struct depth_pass dp = {.b = b, .now = time(NULL)};
    dp.n = server_retry(srv) ? retry_depth(server_retry(srv), &dp.d) : 0;
    dp.seen = xcalloc(dp.n + 1, sizeof *dp.seen);
    for (dp.age = 0; dp.age < 2; dp.age++) {
        header(b, dp.age ? "sluice_spool_oldest_job_age_seconds" : "sluice_spool_jobs", "gauge",
               dp.age ? "Age of the oldest job waiting in the spool, by action type (0: none)."
                      : "Jobs waiting in the spool (attempts in flight included), by action type.");
        memset(dp.seen, 0, (dp.n + 1) * sizeof *dp.seen);
        metrics_action_foreach(put_depth_row, &dp);
        for (size_t i = 0; i < dp.n; i++)
            if (!dp.seen[i])
                put_depth(&dp, dp.d[i].action, &dp.d[i]);
    }
    free(dp.seen);
    free(dp.d);
}

#define ACTION_PASS_HISTOGRAM (1 + PUBLISH_OUTCOMES)

static void put_action_row(const struct action_stats *s, void *arg)
{
    struct action_pass *p = arg;
    struct buf *b = p->b;
    if (p->kind < ACTION_PASS_HISTOGRAM) {
        if (p->kind == 0)
            buf_puts(b, "sluice_action_invocations_total{action=\"");
        else
            buf_printf(b, "sluice_action_%s{action=\"", rule_fields[p->kind].suffix);
        prom_label_value(b, s->action);
        buf_printf(
            b, "\"} %llu\n",
            (unsigned long long)atomic_load(p->kind ? &s->publish[p->kind - 1] : &s->invocations));
        return;
    }
    struct buf labels = {0};
    buf_puts(&labels, "action=\"");
    prom_label_value(&labels, s->action);
    buf_puts(&labels, "\"");
    histogram_render(&s->latency, b, "sluice_action_duration_seconds", buf_cstr(&labels));
    buf_free(&labels);
}

static void put_undelivered_row(const struct rule_stats *s, void *arg)
{
    struct buf *b = arg;
    if (s->rule)
        return;
    buf_puts(b, "sluice_recipients_undelivered_total{rule_set=\"");
    prom_label_value(b, s->rule_set);
    buf_printf(b, "\"} %llu\n", (unsigned long long)atomic_load(&s->recipients_undelivered));
}

static void counter(struct buf *b, const char *name, const char *help, unsigned long long v)
{
    header(b, name, "counter", help);
    buf_printf(b, "%s %llu\n", name, v);
}

/* What is running: the build, and the config in force with its reload history. */
static void put_process(struct server *srv, struct buf *b)
{
    header(b, "sluice_build_info", "gauge",
           "Always 1; the labels say which sluice and which libraries it runs with.");
    buf_printf(b,
               "sluice_build_info{version=\"%s\",lua=\"%s.%s\",openssl=\"%s\","
               "libevent=\"%s\"} 1\n",
               SLUICE_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR,
               OpenSSL_version(OPENSSL_VERSION_STRING), event_get_version());
    const struct server_reloads *r = server_reloads(srv);
    header(b, "sluice_config_reloads_total", "counter",
           "Config reloads (SIGHUP), by result; a failed one keeps the running config.");
    buf_printf(b, "sluice_config_reloads_total{result=\"success\"} %llu\n", r->succeeded);
    buf_printf(b, "sluice_config_reloads_total{result=\"failure\"} %llu\n", r->failed);
    header(b, "sluice_config_last_reload_successful", "gauge",
           "1 when the last reload (or the start) succeeded, 0 when it failed.");
    buf_printf(b, "sluice_config_last_reload_successful %d\n", r->last_ok);
    header(b, "sluice_config_last_reload_success_timestamp_seconds", "gauge",
           "When the config in force was loaded (at start or by a reload), Unix time.");
    buf_printf(b, "sluice_config_last_reload_success_timestamp_seconds %lld\n",
               (long long)r->last_success);
    header(b, "sluice_config_hash_info", "gauge",
           "Always 1; sha256 is the SHA-256 of the text of the config file in force.");
    buf_printf(b, "sluice_config_hash_info{sha256=\"%s\"} 1\n", server_config(srv)->sha256);
}

void metrics_render(struct server *srv, struct buf *b)
{
    put_process(srv, b);
    for (int set = 1; set >= 0; set--) {
        for (int f = 0; f < 4; f++) {
            char name[96];
            snprintf(name, sizeof name, "sluice_%s_%s", set ? "rule_set" : "rule",
                     rule_fields[f].suffix);
            header(b, name, "counter", rule_fields[f].help);
            struct rule_pass p = {b, set, f};
            metrics_foreach(put_rule_row, &p);
        }
    }
    header(b, "sluice_recipients_undelivered_total", "counter",
           "Recipients that no delivering action reached (server.undelivered), by rule set.");
    metrics_foreach(put_undelivered_row, b);
    header(b, "sluice_action_invocations_total", "counter",
           "Runs of an action's code, in the session or one delivery attempt, by action type.");
    struct action_pass ap = {b, 0};
    metrics_action_foreach(put_action_row, &ap);
    for (ap.kind = 1; ap.kind < ACTION_PASS_HISTOGRAM; ap.kind++) {
        char name[96];
        snprintf(name, sizeof name, "sluice_action_%s", rule_fields[ap.kind].suffix);
        header(b, name, "counter", rule_fields[ap.kind].help);
        metrics_action_foreach(put_action_row, &ap);
    }
    header(b, "sluice_action_duration_seconds", "histogram",
           "Action run time, by action type (the same runs as invocations).");
    metrics_action_foreach(put_action_row, &ap);

    put_spool(srv, b);

    counter(b, "sluice_smtp_connections_total", "SMTP connections accepted.",
            atomic_load(&smtp_stats.connections));
    counter(b, "sluice_smtp_connections_refused_total",
            "SMTP connections refused at connect (limits, receipt filters).",
            atomic_load(&smtp_stats.connections_refused));
    counter(b, "sluice_smtp_tls_sessions_total", "Successful STARTTLS handshakes.",
            atomic_load(&smtp_stats.tls_sessions));
    header(b, "sluice_tls_handshakes_total", "counter",
           "Successful STARTTLS handshakes, by protocol version.");
    for (int v = 0; v < TLS_SLOTS; v++)
        buf_printf(b, "sluice_tls_handshakes_total{version=\"%s\"} %llu\n",
                   tls_slot_name((enum tls_version_slot)v),
                   (unsigned long long)atomic_load(&smtp_stats.tls_handshakes[v]));
    header(b, "sluice_tls_handshake_failures_total", "counter",
           "STARTTLS handshakes that failed, by reason.");
    for (int f = 0; f < TLS_FAILS; f++)
        buf_printf(b, "sluice_tls_handshake_failures_total{reason=\"%s\"} %llu\n",
                   tls_failure_name((enum tls_failure)f),
                   (unsigned long long)atomic_load(&smtp_stats.tls_failures[f]));
    struct dns_counts dc;
    dns_counts(&dc);
    header(b, "sluice_dns_queries_total", "counter",
           "Lookups through sluice's DNS layer, by result (timeout, servfail and error are "
           "failures; cached answers included).");
    for (int r = 0; r < DNS_RESULTS; r++)
        buf_printf(b, "sluice_dns_queries_total{result=\"%s\"} %llu\n",
                   dns_result_name((enum dns_result)r), dc.queries[r]);
    counter(b, "sluice_dns_cache_hits_total",
            "DNS lookups answered by sluice's per-thread answer cache.", dc.cache_hits);
    counter(b, "sluice_smtp_messages_accepted_total", "Messages answered 250 after DATA.",
            atomic_load(&smtp_stats.messages_accepted));
    counter(b, "sluice_smtp_messages_refused_total", "Messages answered 4xx/5xx after DATA.",
            atomic_load(&smtp_stats.messages_refused));
    counter(b, "sluice_smtp_bytes_received_total", "Message bytes received in DATA.",
            atomic_load(&smtp_stats.bytes_received));
    counter(b, "sluice_bounce_dsn_not_sent_total",
            "Recipients refused by rules after acceptance whose DSN was not sent.",
            atomic_load(&smtp_stats.dsn_not_sent));
    header(b, "sluice_smtp_mail_rejected_total", "counter",
           "MAIL FROM commands refused, by reason (size: SIZE= above max_message_size).");
    for (int r = 0; r < MAIL_REJECT_REASONS; r++)
        buf_printf(b, "sluice_smtp_mail_rejected_total{reason=\"%s\"} %llu\n",
                   mail_reject_reason_name((enum mail_reject_reason)r),
                   (unsigned long long)atomic_load(&smtp_stats.mail_rejected[r]));
    header(b, "sluice_data_reply_seconds", "histogram",
           "Time from the end of DATA to its reply, for messages handed to the rules.");
    histogram_render(&smtp_stats.data_reply, b, "sluice_data_reply_seconds", "");
    verdict_stats_render(b);
    header(b, "sluice_smtp_recipients_rejected_total", "counter",
           "Recipients refused at RCPT, by reason (size: in DATA, each recipient of a message "
           "above max_message_size).");
    for (int r = 0; r < REJECT_REASONS; r++)
        buf_printf(b, "sluice_smtp_recipients_rejected_total{reason=\"%s\"} %llu\n",
                   rcpt_reject_reason_name((enum rcpt_reject_reason)r),
                   (unsigned long long)atomic_load(&smtp_stats.rcpt_rejected[r]));
    counter(b, "sluice_proxy_refused_total",
            "Connections closed unheard on PROXY protocol listeners (untrusted source, bad "
            "or missing header).",
            atomic_load(&smtp_stats.proxy_refused));
    script_metrics_render(b);
    dmarc_metrics_render(b);
    unsigned long key_hits, key_misses;
    dkim_key_cache_counts(&key_hits, &key_misses);
    header(b, "sluice_dkim_key_decodes_total", "counter",
           "DKIM public keys needed by verification, by where they came from (cache: decoded "
           "before; decoded: by libcrypto now).");
    buf_printf(b, "sluice_dkim_key_decodes_total{from=\"cache\"} %lu\n", key_hits);
    buf_printf(b, "sluice_dkim_key_decodes_total{from=\"decoded\"} %lu\n", key_misses);
    header(b, "sluice_smtp_sessions", "gauge", "SMTP sessions open now.");
    buf_printf(b, "sluice_smtp_sessions %zu\n", server_nsessions(srv));
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct server *srv = arg;
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    struct buf b = {0};
    metrics_render(srv, &b);
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, b.data, b.len);
    buf_free(&b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void on_other(struct evhttp_request *req, void *arg)
{
    evhttp_send_error(req, 404, "Not Found (try /metrics)");
}

struct evhttp *metrics_http_start(struct server *srv, const char *address, char *err, size_t errlen)
{
    char host[80];
    const char *colon = strrchr(address, ':');
    size_t hl = colon ? (size_t)(colon - address) : 0;
    if (!colon || hl >= sizeof host) {
        snprintf(err, errlen, "bad metrics address '%s'", address);
        return NULL;
    }
    memcpy(host, address[0] == '[' ? address + 1 : address, hl);
    host[address[0] == '[' ? hl - 2 : hl] = '\0';
    struct evhttp *http = evhttp_new(server_base(srv));
    if (!http || evhttp_bind_socket(http, host, (unsigned short)atoi(colon + 1)) != 0) {
        snprintf(err, errlen, "cannot listen for metrics on %s", address);
        if (http)
            evhttp_free(http);
        return NULL;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(http, "/metrics", on_request, srv);
    evhttp_set_gencb(http, on_other, NULL);
    return http;
}

void metrics_http_free(struct evhttp *http)
{
    if (http)
        evhttp_free(http);
}
