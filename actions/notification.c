/* SES notification JSON
 * (https://docs.aws.amazon.com/ses/latest/dg/receiving-email-notifications-contents.html) built
 * from a spooled job, with jansson. */
#include "actions/notification.h"
#include "core/headers.h"
#include "core/verdict.h"
#include "spool/spool.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static json_t *iso_time(time_t t)
{
    char s[32];
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return json_string(s);
}

/* SES has no "not computed" status: a verdict that was not computed is left out. */
static void put_verdict(json_t *o, const char *key, enum verdict v)
{
    if (v != VERDICT_UNSET)
        json_object_set_new(o, key, json_pack("{s:s}", "status", verdict_name(v)));
}

/* json_string() refuses invalid UTF-8; header bytes from the wire may be anything. */
static json_t *text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *copy = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    j = json_stringn(copy, n);
    free(copy);
    return j;
}

static json_t *build_mail(const struct spool_job *j, size_t headers_max)
{
    json_t *headers = json_array(), *common = json_object(), *dest = json_array();
    json_t *from = json_array(), *to = json_array();
    struct buf name = {0}, value = {0};
    size_t used = 0;
    int truncated = 0;
    struct hdr_reader r;
    struct hdr_field f;
    hdr_reader_init(&r, j->content.data, j->content.len);
    while (hdr_reader_next(&r, &f)) {
        buf_reset(&name);
        buf_reset(&value);
        buf_append(&name, r.msg + f.off, f.name_len);
        buf_cstr(&name);
        header_unfold(r.msg, &f, &value);
        if (used + name.len + value.len > headers_max) {
            truncated = 1;
        } else {
            used += name.len + value.len;
            json_array_append_new(headers,
                                  json_pack("{s:o, s:o}", "name", text(name.data, name.len),
                                            "value", text(value.data, value.len)));
        }
        const char *n = name.data;
        json_t *v = text(value.data, value.len);
        if (strcasecmp(n, "From") == 0)
            json_array_append(from, v);
        else if (strcasecmp(n, "To") == 0)
            json_array_append(to, v);
        else if (strcasecmp(n, "Subject") == 0 || strcasecmp(n, "Date") == 0 ||
                 strcasecmp(n, "Message-ID") == 0 || strcasecmp(n, "Return-Path") == 0) {
            const char *key = strcasecmp(n, "Subject") == 0       ? "subject"
                              : strcasecmp(n, "Date") == 0        ? "date"
                              : strcasecmp(n, "Return-Path") == 0 ? "returnPath"
                                                                  : "messageId";
            if (!json_object_get(common, key))
                json_object_set(common, key, v);
        }
        json_decref(v);
    }
    buf_free(&name);
    buf_free(&value);
    json_object_set_new(common, "from", from);
    json_object_set_new(common, "to", to);
    for (size_t i = 0; i < j->env.nrcpts; i++)
        json_array_append_new(dest, json_string(j->env.rcpts[i]));
    json_t *mail =
        json_pack("{s:o, s:s, s:s, s:o, s:b, s:o, s:o}", "timestamp", iso_time(j->env.arrival),
                  "source", j->env.mail_from, "messageId", j->env.qid, "destination", dest,
                  "headersTruncated", truncated, "headers", headers, "commonHeaders", common);
    return mail;
}

static json_t *encode_content(const struct spool_job *j, enum notification_content content,
                              int base64)
{
    size_t n = j->content.len;
    if (content == CONTENT_HEADERS)
        n = headers_length(j->content.data, j->content.len);
    if (!base64)
        return text(j->content.data, n);
    size_t outlen = 4 * ((n + 2) / 3) + 1;
    unsigned char *out = malloc(outlen);
    EVP_EncodeBlock(out, (const unsigned char *)j->content.data, (int)n);
    json_t *s = json_string((char *)out);
    free(out);
    return s;
}

json_t *notification_build(const struct spool_job *j, json_t *action,
                           enum notification_content content, int base64, size_t headers_max)
{
    json_t *rcpts = json_array();
    for (size_t i = 0; i < j->env.nrcpts; i++)
        json_array_append_new(rcpts, json_string(j->env.rcpts[i]));
    json_t *receipt = json_pack(
        "{s:o, s:I, s:o, s:o}", "timestamp", iso_time(j->created), "processingTimeMillis",
        (json_int_t)((j->created - j->env.arrival) * 1000), "recipients", rcpts, "action", action);
    put_verdict(receipt, "spamVerdict", j->env.verdicts.spam);
    put_verdict(receipt, "virusVerdict", j->env.verdicts.virus);
    put_verdict(receipt, "spfVerdict", j->env.verdicts.spf);
    put_verdict(receipt, "dkimVerdict", j->env.verdicts.dkim);
    put_verdict(receipt, "dmarcVerdict", j->env.verdicts.dmarc);
    if (j->env.verdicts.dmarc_policy != DMARC_POLICY_UNSET)
        json_object_set_new(receipt, "dmarcPolicy",
                            json_string(dmarc_policy_name(j->env.verdicts.dmarc_policy)));
    json_t *n = json_pack("{s:s, s:o, s:o}", "notificationType", "Received", "receipt", receipt,
                          "mail", build_mail(j, headers_max));
    if (content != CONTENT_NONE)
        json_object_set_new(n, "content", encode_content(j, content, base64));
    return n;
}
