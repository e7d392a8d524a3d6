/* The envelope and its JSON form (jansson). */
#include "core/envelope.h"
#include "core/xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void envelope_init(struct envelope *e)
{
    memset(e, 0, sizeof *e);
}

void envelope_free(struct envelope *e)
{
    free(e->client_rdns);
    free(e->helo);
    free(e->mail_from);
    free(e->dsn_envid);
    for (size_t i = 0; i < e->nrcpts; i++) {
        free(e->rcpts[i]);
        free(e->rcpt_dsn[i].orcpt);
    }
    free(e->rcpts);
    free(e->rcpt_dsn);
    envelope_init(e);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void envelope_add_rcpt_dsn(struct envelope *e, const char *addr, unsigned notify, const char *orcpt)
{
    e->rcpts = xgrow(e->rcpts, sizeof *e->rcpts, &e->rcpts_cap, e->nrcpts);
    e->rcpt_dsn = xgrow(e->rcpt_dsn, sizeof *e->rcpt_dsn, &e->rcpt_dsn_cap, e->nrcpts);
    e->rcpt_dsn[e->nrcpts] = (struct rcpt_dsn){notify, dup_or_null(orcpt)};
    e->rcpts[e->nrcpts++] = xstrdup(addr);
}

void envelope_add_rcpt(struct envelope *e, const char *addr)
{
    envelope_add_rcpt_dsn(e, addr, 0, NULL);
}

void envelope_copy_rcpt(struct envelope *dst, const struct envelope *src, size_t i)
{
    envelope_add_rcpt_dsn(dst, src->rcpts[i], src->rcpt_dsn[i].notify, src->rcpt_dsn[i].orcpt);
}

bool envelope_rcpt_wants_failure_dsn(const struct envelope *e, size_t i)
{
    unsigned n = e->rcpt_dsn[i].notify;
    return n == 0 || (n & DSN_NOTIFY_FAILURE);
}

void envelope_keep_rcpts(struct envelope *e, const bool *keep)
{
    size_t k = 0;
    for (size_t i = 0; i < e->nrcpts; i++) {
        if (keep[i]) {
            e->rcpts[k] = e->rcpts[i];
            e->rcpt_dsn[k++] = e->rcpt_dsn[i];
        } else {
            free(e->rcpts[i]);
            free(e->rcpt_dsn[i].orcpt);
        }
    }
    e->nrcpts = k;
}

void envelope_copy(struct envelope *dst, const struct envelope *src)
{
    *dst = *src;
    dst->client_rdns = dup_or_null(src->client_rdns);
    dst->helo = dup_or_null(src->helo);
    dst->mail_from = dup_or_null(src->mail_from);
    dst->dsn_envid = dup_or_null(src->dsn_envid);
    dst->rcpts = NULL;
    dst->rcpt_dsn = NULL;
    dst->nrcpts = dst->rcpts_cap = dst->rcpt_dsn_cap = 0;
    for (size_t i = 0; i < src->nrcpts; i++)
        envelope_copy_rcpt(dst, src, i);
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static const char *const verdict_keys[] = {"spf", "dkim", "dmarc", "spam", "virus"};

static enum verdict *verdict_field(struct verdicts *v, int i)
{
    enum verdict *fields[] = {&v->spf, &v->dkim, &v->dmarc, &v->spam, &v->virus};
    return fields[i];
}

json_t *envelope_to_json(const struct envelope *e)
{
    json_t *rcpts = json_array(), *dsn = json_array();
    for (size_t i = 0; i < e->nrcpts; i++) {
        json_array_append_new(rcpts, json_string(e->rcpts[i]));
        json_array_append_new(dsn, json_pack("{s:i, s:o}", "notify", (int)e->rcpt_dsn[i].notify,
                                             "orcpt", string_or_null(e->rcpt_dsn[i].orcpt)));
    }
    json_t *v = json_object();
    struct verdicts vv = e->verdicts;
    for (int i = 0; i < 5; i++)
        json_object_set_new(v, verdict_keys[i], json_string(verdict_name(*verdict_field(&vv, i))));
    json_object_set_new(v, "dmarc_policy", json_string(dmarc_policy_name(vv.dmarc_policy)));
    json_t *o = json_pack(
        "{s:s, s:I, s:s, s:i, s:o, s:o, s:b, s:b, s:s, s:s, s:s, s:o, s:o}", "qid", e->qid,
        "arrival", (json_int_t)e->arrival, "client_ip", e->client_ip, "client_port", e->client_port,
        "client_rdns", string_or_null(e->client_rdns), "helo", string_or_null(e->helo), "esmtp",
        e->esmtp, "tls", e->tls, "tls_version", e->tls_version, "tls_cipher", e->tls_cipher,
        "mail_from", e->mail_from ? e->mail_from : "", "rcpts", rcpts, "verdicts", v);
    json_object_set_new(o, "smtputf8", json_boolean(e->smtputf8));
    json_object_set_new(o, "dsn_ret",
                        e->ret == DSN_RET_FULL   ? json_string("FULL")
                        : e->ret == DSN_RET_HDRS ? json_string("HDRS")
                                                 : json_null());
    json_object_set_new(o, "dsn_envid", string_or_null(e->dsn_envid));
    json_object_set_new(o, "rcpt_dsn", dsn);
    return o;
}

/* Each reader names the field it failed on; a string too long for its buffer is refused too
 * (a truncated qid or address would be misread, which is worse than refused). */
static int fail(char *err, size_t errlen, const char *key, const char *why)
{
    snprintf(err, errlen, "envelope field '%s' %s", key, why);
    return -1;
}

static int get_string(const json_t *o, const char *key, bool nullable, char **out, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return fail(err, errlen, key, "is missing");
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return fail(err, errlen, key, nullable ? "is not a string or null" : "is not a string");
    *out = xstrdup(json_string_value(v));
    return 0;
}

static int get_fixed(const json_t *o, const char *key, char *buf, size_t len, char *err,
                     size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return fail(err, errlen, key, "is missing");
    if (!json_is_string(v))
        return fail(err, errlen, key, "is not a string");
    if (json_string_length(v) >= len)
        return fail(err, errlen, key, "is too long");
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_int(const json_t *o, const char *key, json_int_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return fail(err, errlen, key, "is missing");
    if (!json_is_integer(v))
        return fail(err, errlen, key, "is not an integer");
    *out = json_integer_value(v);
    return 0;
}

static int get_bool(const json_t *o, const char *key, bool *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return fail(err, errlen, key, "is missing");
    if (!json_is_boolean(v))
        return fail(err, errlen, key, "is not a boolean");
    *out = json_is_true(v);
    return 0;
}

static int get_verdicts(const json_t *o, struct verdicts *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, "verdicts");
    if (!v)
        return fail(err, errlen, "verdicts", "is missing");
    if (!json_is_object(v))
        return fail(err, errlen, "verdicts", "is not an object");
    for (int i = 0; i < 5; i++) {
        const char *s = json_string_value(json_object_get(v, verdict_keys[i]));
        /* verdict_parse knows only computed verdicts; "UNSET" is what verdict_name writes. */
        if (s && strcmp(s, "UNSET") == 0)
            *verdict_field(out, i) = VERDICT_UNSET;
        else if (!s || verdict_parse(s, verdict_field(out, i)) < 0)
            return fail(err, errlen, verdict_keys[i], "is not a verdict name");
    }
    const char *p = json_string_value(json_object_get(v, "dmarc_policy"));
    if (p && strcmp(p, "UNSET") == 0)
        out->dmarc_policy = DMARC_POLICY_UNSET;
    else if (!p || dmarc_policy_parse(p, &out->dmarc_policy) < 0)
        return fail(err, errlen, "dmarc_policy", "is not a DMARC policy name");
    return 0;
}

static int get_rcpts(const json_t *o, struct envelope *e, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, "rcpts");
    if (!v)
        return fail(err, errlen, "rcpts", "is missing");
    if (!json_is_array(v))
        return fail(err, errlen, "rcpts", "is not an array");
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (!s)
            return fail(err, errlen, "rcpts", "holds a value that is not a string");
        envelope_add_rcpt(e, s);
    }
    return 0;
}

/* The RFC 6531 and RFC 3461 fields, each optional: job files from before them lack them. */
static int get_extensions(const json_t *o, struct envelope *e, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, "smtputf8");
    if (v && get_bool(o, "smtputf8", &e->smtputf8, err, errlen) < 0)
        return -1;
    v = json_object_get(o, "dsn_ret");
    const char *ret = json_string_value(v);
    if (v && !json_is_null(v)) {
        if (ret && strcmp(ret, "FULL") == 0)
            e->ret = DSN_RET_FULL;
        else if (ret && strcmp(ret, "HDRS") == 0)
            e->ret = DSN_RET_HDRS;
        else
            return fail(err, errlen, "dsn_ret", "is not FULL, HDRS or null");
    }
    if (json_object_get(o, "dsn_envid") &&
        get_string(o, "dsn_envid", true, &e->dsn_envid, err, errlen) < 0)
        return -1;
    v = json_object_get(o, "rcpt_dsn");
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) != e->nrcpts)
        return fail(err, errlen, "rcpt_dsn", "is not an array as long as rcpts");
    for (size_t i = 0; i < e->nrcpts; i++) {
        json_t *r = json_array_get(v, i), *n = json_object_get(r, "notify");
        json_t *oc = json_object_get(r, "orcpt");
        if (!json_is_integer(n) || json_integer_value(n) < 0 || json_integer_value(n) > 15 ||
            (oc && !json_is_null(oc) && !json_is_string(oc)))
            return fail(err, errlen, "rcpt_dsn", "holds a malformed entry");
        e->rcpt_dsn[i].notify = (unsigned)json_integer_value(n);
        e->rcpt_dsn[i].orcpt = dup_or_null(json_string_value(oc));
    }
    return 0;
}

int envelope_from_json(struct envelope *e, const json_t *o, char *err, size_t errlen)
{
    envelope_init(e);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "envelope is not a JSON object");
        return -1;
    }
    json_int_t arrival = 0, port = 0;
    int rc = 0;
    if (get_fixed(o, "qid", e->qid, sizeof e->qid, err, errlen) < 0 ||
        get_int(o, "arrival", &arrival, err, errlen) < 0 ||
        get_fixed(o, "client_ip", e->client_ip, sizeof e->client_ip, err, errlen) < 0 ||
        get_int(o, "client_port", &port, err, errlen) < 0 ||
        get_string(o, "client_rdns", true, &e->client_rdns, err, errlen) < 0 ||
        get_string(o, "helo", true, &e->helo, err, errlen) < 0 ||
        get_bool(o, "esmtp", &e->esmtp, err, errlen) < 0 ||
        get_bool(o, "tls", &e->tls, err, errlen) < 0 ||
        get_fixed(o, "tls_version", e->tls_version, sizeof e->tls_version, err, errlen) < 0 ||
        get_fixed(o, "tls_cipher", e->tls_cipher, sizeof e->tls_cipher, err, errlen) < 0 ||
        get_string(o, "mail_from", false, &e->mail_from, err, errlen) < 0 ||
        get_rcpts(o, e, err, errlen) < 0 || get_verdicts(o, &e->verdicts, err, errlen) < 0 ||
        get_extensions(o, e, err, errlen) < 0)
        rc = -1;
    else if (port < 0 || port > 65535)
        rc = fail(err, errlen, "client_port", "is not a port number");
    if (rc < 0) {
        envelope_free(e);
        return -1;
    }
    e->arrival = (time_t)arrival;
    e->client_port = (int)port;
    return 0;
}
