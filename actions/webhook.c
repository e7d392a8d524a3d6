/* webhook { url, content = "none"|"headers"|"full", encoding = "utf-8"|"base64", secret,
 * timeout_ms, headers_max }: POSTs the SES-shaped notification (SES's SNS action, without SNS)
 * after the message was accepted, from the durable spool, retried until expire_after.
 * X-Sluice-Signature: sha256=<HMAC-SHA256 of the body> when a secret is set;
 * X-Sluice-Delivery-Id is the same on every retry, so receivers can drop duplicates. */
#include "actions/action.h"
#include "delivery/http_post.h"
#include "actions/notification.h"
#include "lua/lua_fields.h"
#include "core/xalloc.h"
#include "spool/spool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct webhook_state {
    char *url;
    enum notification_content content;
    int base64;
    char *secret;
    long long timeout_ms;
    long long headers_max;
};

static int webhook_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"url",        "content",     "encoding", "secret",
                                       "timeout_ms", "headers_max", NULL};
    struct webhook_state *s = xcalloc(1, sizeof *s);
    *state = s;
    s->timeout_ms = 5000;
    s->headers_max = 10240;
    char *content = NULL, *encoding = NULL;
    int rc = -1;
    if (lf_check_keys(L, idx, "webhook", keys, err, errlen) < 0 ||
        lf_string(L, idx, "url", true, &s->url, err, errlen) < 0 ||
        lf_string(L, idx, "content", false, &content, err, errlen) < 0 ||
        lf_string(L, idx, "encoding", false, &encoding, err, errlen) < 0 ||
        lf_string(L, idx, "secret", false, &s->secret, err, errlen) < 0 ||
        lf_integer(L, idx, "timeout_ms", 1, 600000, &s->timeout_ms, err, errlen) < 0 ||
        lf_integer(L, idx, "headers_max", 0, 1 << 24, &s->headers_max, err, errlen) < 0)
        goto done;
    if (strncmp(s->url, "http://", 7) != 0 && strncmp(s->url, "https://", 8) != 0) {
        snprintf(err, errlen, "webhook: url must start with http:// or https://");
        goto done;
    }
    if (!content || strcmp(content, "none") == 0)
        s->content = CONTENT_NONE;
    else if (strcmp(content, "headers") == 0)
        s->content = CONTENT_HEADERS;
    else if (strcmp(content, "full") == 0)
        s->content = CONTENT_FULL;
    else {
        snprintf(err, errlen, "webhook: content must be \"none\", \"headers\" or \"full\"");
        goto done;
    }
    if (encoding && strcmp(encoding, "base64") == 0)
        s->base64 = 1;
    else if (encoding && strcmp(encoding, "utf-8") != 0) {
        snprintf(err, errlen, "webhook: encoding must be \"utf-8\" or \"base64\"");
        goto done;
    }
    rc = 0;
done:
    free(content);
    free(encoding);
    return rc;
}

/* The POST body (caller frees), or NULL. */
static char *build_body(const struct webhook_state *s, struct spool_job *job, size_t flags)
{
    json_t *action = json_pack("{s:s, s:s, s:s}", "type", "Webhook", "url", s->url, "encoding",
                               s->base64 ? "BASE64" : "UTF8");
    json_t *n = notification_build(job, action, s->content, s->base64, (size_t)s->headers_max);
    char *body = json_dumps(n, flags);
    json_decref(n);
    return body;
}

static void webhook_explain(const void *state, struct spool_job *job, struct buf *out)
{
    char *body = build_body(state, job, JSON_INDENT(2));
    buf_printf(out, "POST %s\n%s", ((const struct webhook_state *)state)->url, body ? body : "");
    free(body);
}

static int webhook_deliver(const void *state, struct spool_job *job, char *err, size_t errlen)
{
    const struct webhook_state *s = state;
    char *body = build_body(s, job, JSON_COMPACT);
    if (!body) {
        snprintf(err, errlen, "cannot encode the notification");
        return -1;
    }
    int rc = http_post_json(s->url, body, job->id, s->secret, (long)s->timeout_ms, err, errlen);
    free(body);
    return rc;
}

static void webhook_describe(const void *state, struct buf *out)
{
    const struct webhook_state *s = state;
    static const char *const contents[] = {"none", "headers", "full"};
    buf_printf(out, "url=%s content=%s encoding=%s%s timeout_ms=%lld", s->url, contents[s->content],
               s->base64 ? "base64" : "utf-8", s->secret ? " signed" : "", s->timeout_ms);
}

static void webhook_free(void *state)
{
    struct webhook_state *s = state;
    if (!s)
        return;
    free(s->url);
    free(s->secret);
    free(s);
}

const struct action_type action_webhook = {
    .name = "webhook",
    .parse = webhook_parse,
    .describe = webhook_describe,
    .free_state = webhook_free,
    .deliver = webhook_deliver,
    .explain = webhook_explain,
};
