/* dmarc_report_ingest { store = DIR, webhook = URL, max_decompressed = BYTES, timeout_ms }:
 * for mail to a domain's rua mailbox. Takes the DMARC aggregate report out of the message
 * (dmarc/report_mail.c), unpacks it with a size cap (dmarc/unpack.c), parses and validates
 * it (dmarc/dmarc_xml.c), writes one JSON document per report to DIR (temp file, fsync,
 * rename: a report on disk is complete) and/or POSTs it to URL, and counts its rows in
 * sluice_dmarc_report_messages_total.
 *
 * Runs in the session, before the reply. A mail that is not a valid report is not worth a
 * retry by its sender, so failures default to on_failure = "continue": logged, counted as a
 * PublishFailure, and the rule's other actions (e.g. store the raw mail) still run. */
#include "actions/action.h"
#include "core/durable.h"
#include "delivery/http_post.h"
#include "lua/lua_fields.h"
#include "core/log.h"
#include "core/message.h"
#include "core/xalloc.h"
#include "dmarc/dmarc_metrics.h"
#include "dmarc/dmarc_xml.h"
#include "dmarc/report_mail.h"
#include "dmarc/unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ingest_state {
    char *store;
    char *webhook;
    long long max_decompressed;
    long long timeout_ms;
};

static int ingest_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"store", "webhook", "max_decompressed", "timeout_ms", NULL};
    struct ingest_state *s = xcalloc(1, sizeof *s);
    *state = s;
    s->max_decompressed = 20 * 1024 * 1024;
    s->timeout_ms = 5000;
    if (lf_check_keys(L, idx, "dmarc_report_ingest", keys, err, errlen) < 0 ||
        lf_string(L, idx, "store", false, &s->store, err, errlen) < 0 ||
        lf_string(L, idx, "webhook", false, &s->webhook, err, errlen) < 0 ||
        lf_integer(L, idx, "max_decompressed", 1024, 1LL << 30, &s->max_decompressed, err, errlen) <
            0 ||
        lf_integer(L, idx, "timeout_ms", 1, 600000, &s->timeout_ms, err, errlen) < 0)
        return -1;
    if (!s->store && !s->webhook) {
        snprintf(err, errlen, "dmarc_report_ingest: needs store, webhook or both");
        return -1;
    }
    if (s->store && !s->store[0]) {
        snprintf(err, errlen, "dmarc_report_ingest: store must not be empty");
        return -1;
    }
    if (s->webhook && strncmp(s->webhook, "http://", 7) != 0 &&
        strncmp(s->webhook, "https://", 8) != 0) {
        snprintf(err, errlen, "dmarc_report_ingest: webhook must start with http:// or https://");
        return -1;
    }
    return 0;
}

/* Reporter-chosen text made safe for a file name: [A-Za-z0-9.@+-], the rest '_'. */
static void put_safe(struct buf *b, const char *v)
{
    size_t n = 0;
    for (; v && *v && n < 80; v++, n++) {
        char c = *v;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '@' || c == '+' || c == '-' || (c == '.' && n > 0);
        buf_append(b, ok ? &c : "_", 1);
    }
}

/* Writes text to dir/name durably. Returns 0 or -1 with err set (and *sys_errno). */
static int write_durably(const char *dir, const char *name, const char *text, char *err,
                         size_t errlen, int *sys_errno)
{
    int rc = durable_write_file(dir, name, text, strlen(text), 0750, 0640, err, errlen);
    if (rc < 0) {
        *sys_errno = -rc;
        return -1;
    }
    return 0;
}

static int post(const struct ingest_state *s, const char *body, const char *qid, char *err,
                size_t errlen)
{
    return http_post_json(s->webhook, body, qid, NULL, (long)s->timeout_ms, err, errlen);
}

static const char *field(json_t *doc, const char *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(json_object_get(doc, obj), key));
    return v ? v : "";
}

static enum action_status ingest_run(const void *state, struct action_ctx *ctx)
{
    const struct ingest_state *s = state;
    struct message *m = ctx->msg;
    struct buf raw = {0}, xml = {0}, name = {0};
    char why[200];
    const char *kind = "";
    enum action_status st = ACTION_FAILED;
    json_t *doc = NULL;
    char *text = NULL;
    if (report_mail_attachment(m->body.data, m->body.len, &raw, why, sizeof why) < 0) {
        snprintf(ctx->error, sizeof ctx->error, "not a DMARC report: %s", why);
        goto done;
    }
    if (report_unpack((const unsigned char *)raw.data, raw.len, (size_t)s->max_decompressed, &xml,
                      &kind, why, sizeof why) < 0) {
        snprintf(ctx->error, sizeof ctx->error, "DMARC report attachment (%s): %s", kind, why);
        goto done;
    }
    doc = dmarc_xml_parse(xml.data, xml.len, why, sizeof why);
    if (!doc) {
        snprintf(ctx->error, sizeof ctx->error, "invalid DMARC report (%s): %s", kind, why);
        goto done;
    }
    json_object_set_new(doc, "received",
                        json_pack("{s:s, s:s, s:s, s:I}", "qid", m->env.qid, "mail_from",
                                  m->env.mail_from ? m->env.mail_from : "", "client_ip",
                                  m->env.client_ip, "arrival", (json_int_t)m->env.arrival));
    const char *domain = field(doc, "policy_published", "domain");
    const char *org = field(doc, "report_metadata", "org_name");
    const char *id = field(doc, "report_metadata", "report_id");
    size_t nrec = json_array_size(json_object_get(doc, "records"));
    text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) {
        snprintf(ctx->error, sizeof ctx->error, "cannot encode the report as JSON");
        goto done;
    }
    put_safe(&name, domain);
    buf_puts(&name, "!");
    put_safe(&name, org);
    buf_puts(&name, "!");
    put_safe(&name, id);
    buf_puts(&name, ".json");
    action_note(ctx, "DMARC report (%s) from %s, id %s, for %s: %zu records", kind, org, id, domain,
                nrec);
    if (ctx->dry_run) {
        if (s->store)
            action_note(ctx, "would write %s/%s", s->store, buf_cstr(&name));
        if (s->webhook)
            action_note(ctx, "would POST it to %s", s->webhook);
        st = ACTION_OK;
        goto done;
    }
    /* The same report sent twice (a resend, or an SMTP retry after a lost reply) lands on the
     * same name: stored, counted and posted once. */
    char existing[PATH_MAX];
    struct stat sb;
    snprintf(existing, sizeof existing, "%s/%s", s->store ? s->store : "", buf_cstr(&name));
    if (s->store && stat(existing, &sb) == 0) {
        log_msg(LOG_INFO, "qid=%s dmarc report from %s id %s for %s already ingested as %s",
                m->env.qid, org, id, domain, buf_cstr(&name));
        action_note(ctx, "already ingested");
        st = ACTION_OK;
        goto done;
    }
    if (s->store && write_durably(s->store, buf_cstr(&name), text, ctx->error, sizeof ctx->error,
                                  &ctx->sys_errno) < 0)
        goto done;
    dmarc_metrics_add_report(doc);
    log_msg(LOG_INFO, "qid=%s dmarc report (%s) from %s id %s for %s: %zu records%s%s", m->env.qid,
            kind, org, id, domain, nrec, s->store ? " stored as " : "",
            s->store ? buf_cstr(&name) : "");
    if (s->webhook && post(s, text, m->env.qid, ctx->error, sizeof ctx->error) < 0)
        goto done;
    st = ACTION_OK;
done:
    free(text);
    json_decref(doc);
    buf_free(&raw);
    buf_free(&xml);
    buf_free(&name);
    return st;
}

static void ingest_describe(const void *state, struct buf *out)
{
    const struct ingest_state *s = state;
    buf_printf(out, "store=%s webhook=%s max_decompressed=%lld", s->store ? s->store : "-",
               s->webhook ? s->webhook : "-", s->max_decompressed);
}

static void ingest_free(void *state)
{
    struct ingest_state *s = state;
    if (!s)
        return;
    free(s->store);
    free(s->webhook);
    free(s);
}

const struct action_type action_dmarc_report_ingest = {
    .name = "dmarc_report_ingest",
    .delivers = true,
    .parse = ingest_parse,
    .run = ingest_run,
    .describe = ingest_describe,
    .free_state = ingest_free,
    .default_on_failure = ON_FAILURE_CONTINUE,
};
