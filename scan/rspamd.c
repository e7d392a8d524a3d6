/* rspamd's HTTP protocol (POST /checkv2, JSON reply) through libcurl: one request per message.
 * Each worker thread keeps one CURL handle for its life, so a connection is reused whenever the
 * server keeps it open (HTTP keep-alive). rspamd 3.4's normal worker answers every request with
 * "Connection: close", so against it each scan opens a fresh connection (cheap on loopback or a
 * Unix-socket-speed LAN); a keep-alive proxy in front of rspamd is reused as is. */
#include "core/message.h"
#include "core/xalloc.h"
#include "scan/scanners.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* rspamd's reply is a few KB; more is not rspamd. */
#define RSPAMD_MAX_REPLY (4u << 20)
#define TOP_SYMBOLS 5

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t handle_key;

static void handle_free(void *h)
{
    curl_easy_cleanup(h);
}

static void init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&handle_key, handle_free);
}

/* The calling thread's handle; freed by the key's destructor when the thread exits. */
static CURL *thread_handle(void)
{
    pthread_once(&once, init_once);
    CURL *h = pthread_getspecific(handle_key);
    if (h) {
        curl_easy_reset(h); /* options only: the connection cache survives */
        return h;
    }
    h = curl_easy_init();
    if (h)
        pthread_setspecific(handle_key, h);
    return h;
}

long long scan_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum verdict rspamd_action_verdict(const char *a)
{
    if (strcmp(a, "no action") == 0 || strcmp(a, "greylist") == 0)
        return VERDICT_PASS;
    if (strcmp(a, "add header") == 0 || strcmp(a, "rewrite subject") == 0 ||
        strcmp(a, "soft reject") == 0)
        return VERDICT_GRAY;
    if (strcmp(a, "reject") == 0)
        return VERDICT_FAIL;
    return VERDICT_PROCESSING_FAILED;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    if (b->len + size * n > RSPAMD_MAX_REPLY)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    buf_append(b, p, size * n);
    return size * n;
}

/* Request header values come from the SMTP session (already validated); anything with a
 * control character is left out rather than sent. */
static struct curl_slist *add_header(struct curl_slist *l, const char *name, const char *value)
{
    if (!value)
        return l;
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return l;
    char *h = xasprintf("%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(l, h);
    free(h);
    return n ? n : l;
}

/* The authentication verdicts sluice already computed, in the JSON rspamd's http_headers
 * module reads (when the operator enables it, rspamd then skips its own SPF/DKIM/DMARC). */
static struct curl_slist *add_auth(struct curl_slist *l, const char *name, enum verdict v,
                                   enum dmarc_policy policy)
{
    const char *r = NULL;
    switch (v) {
    case VERDICT_PASS:
        r = "pass";
        break;
    case VERDICT_FAIL:
        r = policy == DMARC_POLICY_REJECT       ? "reject"
            : policy == DMARC_POLICY_QUARANTINE ? "quarantine"
                                                : "fail";
        break;
    case VERDICT_GRAY:
        r = "softfail";
        break;
    case VERDICT_PROCESSING_FAILED:
        r = "tempfail";
        break;
    default:
        return l;
    }
    char json[64];
    snprintf(json, sizeof json, "{\"result\": \"%s\"}", r);
    return add_header(l, name, json);
}

static struct curl_slist *request_headers(const struct message *m)
{
    struct curl_slist *l = NULL;
    char qid[sizeof m->env.qid];
    snprintf(qid, sizeof qid, "%s", m->env.qid);
    l = add_header(l, "IP", m->env.client_ip);
    l = add_header(l, "Helo", m->env.helo);
    l = add_header(l, "Hostname", m->env.client_rdns);
    l = add_header(l, "From", m->env.mail_from && m->env.mail_from[0] ? m->env.mail_from : "<>");
    for (size_t i = 0; i < m->env.nrcpts; i++)
        l = add_header(l, "Rcpt", m->env.rcpts[i]);
    l = add_header(l, "Queue-Id", qid);
    l = add_header(l, "MTA-Name", m->hostname);
    if (m->env.tls) {
        l = add_header(l, "TLS-Version", m->env.tls_version);
        l = add_header(l, "TLS-Cipher", m->env.tls_cipher);
    }
    l = add_auth(l, "SPF", m->env.verdicts.spf, DMARC_POLICY_UNSET);
    l = add_auth(l, "DKIM", m->env.verdicts.dkim, DMARC_POLICY_UNSET);
    l = add_auth(l, "DMARC", m->env.verdicts.dmarc, m->env.verdicts.dmarc_policy);
    l = curl_slist_append(l, "Expect:"); /* no 100-continue round trip for large bodies */
    return l;
}

struct sym {
    const char *name;
    double score;
};

static int sym_cmp(const void *a, const void *b)
{
    double x = ((const struct sym *)a)->score, y = ((const struct sym *)b)->score;
    x = x < 0 ? -x : x;
    y = y < 0 ? -y : y;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The symbols that weigh most; zero-score ones only when nothing scored (GTUBE forces its
 * action with a zero score). Names are kept to [A-Za-z0-9_.-]: they go into a header. */
static void top_symbols(json_t *symbols, bool zero_ok, struct buf *out)
{
    size_t n = json_is_object(symbols) ? json_object_size(symbols) : 0, k = 0;
    if (!n)
        return;
    struct sym *v = xcalloc(n, sizeof *v);
    const char *key;
    json_t *val;
    json_object_foreach(symbols, key, val)
    {
        double s = json_number_value(json_object_get(val, "score"));
        if (s != 0 || zero_ok)
            v[k++] = (struct sym){key, s};
    }
    qsort(v, k, sizeof *v, sym_cmp);
    for (size_t i = 0; i < k && i < TOP_SYMBOLS; i++) {
        if (i)
            buf_puts(out, ", ");
        for (const char *c = v[i].name; *c; c++)
            if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-", *c))
                buf_append(out, c, 1);
        buf_printf(out, "(%.2f)", v[i].score);
    }
    free(v);
}

static void parse_reply(const struct buf *body, struct spam_result *out)
{
    json_error_t jerr;
    json_t *root = json_loadb(body->data, body->len, 0, &jerr);
    const char *action = root ? json_string_value(json_object_get(root, "action")) : NULL;
    if (!action) {
        snprintf(out->error, sizeof out->error, "rspamd reply is not a scan result: %s",
                 root ? "no action" : jerr.text);
        json_decref(root);
        return;
    }
    snprintf(out->action, sizeof out->action, "%s", action);
    out->score = json_number_value(json_object_get(root, "score"));
    out->required = json_number_value(json_object_get(root, "required_score"));
    out->verdict = rspamd_action_verdict(action);
    if (out->verdict == VERDICT_PROCESSING_FAILED)
        snprintf(out->error, sizeof out->error, "rspamd gave unknown action '%s'", out->action);
    json_t *symbols = json_object_get(root, "symbols");
    top_symbols(symbols, false, &out->symbols);
    if (out->symbols.len == 0 && out->verdict != VERDICT_PASS)
        top_symbols(symbols, true, &out->symbols);
    json_decref(root);
}

void rspamd_check(const char *url, const struct message *m, long long deadline,
                  struct spam_result *out)
{
    out->verdict = VERDICT_PROCESSING_FAILED;
    long long left = deadline - scan_now_ms();
    if (left <= 0) {
        snprintf(out->error, sizeof out->error, "rspamd: no time left in timeout_ms");
        return;
    }
    CURL *h = thread_handle();
    if (!h) {
        snprintf(out->error, sizeof out->error, "rspamd: cannot create a curl handle");
        return;
    }
    char *endpoint = xasprintf("%s/checkv2", url);
    struct curl_slist *headers = request_headers(m);
    struct buf reply = {0};
    curl_easy_setopt(h, CURLOPT_URL, endpoint);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for timeouts */
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, m->body.data ? m->body.data : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)m->body.len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, left);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK)
        snprintf(out->error, sizeof out->error, "rspamd %s: %s", endpoint, curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(out->error, sizeof out->error, "rspamd %s: HTTP status %ld", endpoint, status);
    else
        parse_reply(&reply, out);
    /* The handle keeps pointers to these until the next reset. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(headers);
    buf_free(&reply);
    free(endpoint);
}
