/* s3 { endpoint, bucket, prefix, region, access_key_env, secret_key_env, timeout_ms }: PUTs the
 * message (with the headers sluice added) to <endpoint>/<bucket>/<prefix><queue id> on any
 * S3-compatible store after acceptance, from the spool (SES's S3 action). Signed with libcurl's
 * AWS SigV4; the payload's SHA-256 goes in x-amz-content-sha256, which S3 expects and libcurl
 * 7.88 does not add. The key is the queue id, so a retried PUT overwrites, never duplicates. */
#include "actions/action.h"
#include "lua/lua_fields.h"
#include "core/xalloc.h"
#include "spool/spool.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct s3_state {
    char *endpoint;
    char *bucket;
    char *prefix;
    char *region;
    char *access_env;
    char *secret_env;
    long long timeout_ms;
};

static int bucket_valid(const char *b)
{
    size_t n = strlen(b);
    return n >= 3 && n <= 63 && strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") == n;
}

static int s3_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"endpoint",       "bucket",         "prefix",     "region",
                                       "access_key_env", "secret_key_env", "timeout_ms", NULL};
    struct s3_state *s = xcalloc(1, sizeof *s);
    *state = s;
    s->timeout_ms = 30000;
    if (lf_check_keys(L, idx, "s3", keys, err, errlen) < 0 ||
        lf_string(L, idx, "endpoint", true, &s->endpoint, err, errlen) < 0 ||
        lf_string(L, idx, "bucket", true, &s->bucket, err, errlen) < 0 ||
        lf_string(L, idx, "prefix", false, &s->prefix, err, errlen) < 0 ||
        lf_string(L, idx, "region", false, &s->region, err, errlen) < 0 ||
        lf_string(L, idx, "access_key_env", true, &s->access_env, err, errlen) < 0 ||
        lf_string(L, idx, "secret_key_env", true, &s->secret_env, err, errlen) < 0 ||
        lf_integer(L, idx, "timeout_ms", 1, 600000, &s->timeout_ms, err, errlen) < 0)
        return -1;
    if (!s->prefix)
        s->prefix = xstrdup("");
    if (!s->region)
        s->region = xstrdup("us-east-1");
    size_t el = strlen(s->endpoint);
    while (el > 0 && s->endpoint[el - 1] == '/')
        s->endpoint[--el] = '\0';
    if (strncmp(s->endpoint, "http://", 7) != 0 && strncmp(s->endpoint, "https://", 8) != 0) {
        snprintf(err, errlen, "s3: endpoint must start with http:// or https://");
        return -1;
    }
    if (!bucket_valid(s->bucket)) {
        snprintf(err, errlen, "s3: bucket '%s' is not a valid S3 bucket name", s->bucket);
        return -1;
    }
    if (strspn(s->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(s->region)) {
        snprintf(err, errlen, "s3: region '%s' is not a valid region name", s->region);
        return -1;
    }
    return 0;
}

static void sha256_hex(const char *data, size_t len, char *out)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    if (b->len < 2048)
        buf_append(b, p, size * n);
    return size * n;
}

static int s3_deliver(const void *state, struct spool_job *job, char *err, size_t errlen)
{
    const struct s3_state *s = state;
    const char *key = getenv(s->access_env), *secret = getenv(s->secret_env);
    if (!key || !secret) {
        snprintf(err, errlen, "s3: environment variables %s / %s are not set", s->access_env,
                 s->secret_env);
        return -1;
    }
    char *url = xasprintf("%s/%s/%s%s", s->endpoint, s->bucket, s->prefix, job->env.qid);
    char *userpwd = xasprintf("%s:%s", key, secret);
    char *sigv4 = xasprintf("aws:amz:%s:s3", s->region);
    char hash[2 * EVP_MAX_MD_SIZE + 1], line[128 + sizeof hash];
    sha256_hex(job->content.data, job->content.len, hash);
    snprintf(line, sizeof line, "x-amz-content-sha256: %s", hash);
    struct curl_slist *hdrs = curl_slist_append(NULL, line);
    hdrs = curl_slist_append(hdrs, "Content-Type: message/rfc822");
    struct buf body = {0};
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, job->content.data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)job->content.len);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    int result = 0;
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "PUT %s: %s", url, curl_easy_strerror(rc));
        result = -1;
    } else if (status < 200 || status > 299) {
        /* S3 explains itself in an XML <Code>: keep the start of it for the log. */
        snprintf(err, errlen, "PUT %s: HTTP %ld %.200s", url, status, buf_cstr(&body));
        for (char *c = err; *c; c++)
            if (*c == '\r' || *c == '\n')
                *c = ' ';
        result = status >= 400 && status < 500 && status != 408 && status != 429
                     ? ACTION_DELIVER_REJECTED
                     : -1;
    }
    buf_free(&body);
    free(url);
    free(userpwd);
    free(sigv4);
    return result;
}

static void s3_describe(const void *state, struct buf *out)
{
    const struct s3_state *s = state;
    buf_printf(out, "endpoint=%s bucket=%s prefix=%s region=%s", s->endpoint, s->bucket, s->prefix,
               s->region);
}

static void s3_free(void *state)
{
    struct s3_state *s = state;
    if (!s)
        return;
    free(s->endpoint);
    free(s->bucket);
    free(s->prefix);
    free(s->region);
    free(s->access_env);
    free(s->secret_env);
    free(s);
}

/* The credentials are read from the environment at each upload (so a restart is not needed to
 * rotate them): sluice check says when the one it runs in lacks them. */
static int s3_warn(const void *state, char *why, size_t whylen)
{
    const struct s3_state *s = state;
    const char *key = getenv(s->access_env), *secret = getenv(s->secret_env);
    if (key && *key && secret && *secret)
        return 0;
    snprintf(why, whylen,
             "s3: the credential variable%s %s%s%s %s not set in this environment: every upload "
             "will fail until the service has them",
             (!key || !*key) && (!secret || !*secret) ? "s" : "",
             !key || !*key ? s->access_env : "",
             (!key || !*key) && (!secret || !*secret) ? " and " : "",
             !secret || !*secret ? s->secret_env : "",
             (!key || !*key) && (!secret || !*secret) ? "are" : "is");
    return 1;
}

const struct action_type action_s3 = {
    .name = "s3",
    .delivers = true,
    .parse = s3_parse,
    .warn = s3_warn,
    .describe = s3_describe,
    .free_state = s3_free,
    .deliver = s3_deliver,
};
