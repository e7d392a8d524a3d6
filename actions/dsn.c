/* RFC 3464 DSN: multipart/report; report-type=delivery-status, with a human-readable part, the
 * message/delivery-status part and the original headers (text/rfc822-headers). */
#include "actions/dsn.h"
#include "actions/action.h"
#include "actions/mime_part.h"
#include "actions/smtp_client.h"
#include "core/headers.h"
#include "spool/spool.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dsn_build(const struct spool_job *job, struct buf *out)
{
    GMimeMessage *msg = g_mime_message_new(TRUE);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, "Mail Delivery System", job->dsn_from);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, job->mail_from);
    g_mime_message_set_subject(msg, "Undelivered Mail Returned to Sender", NULL);
    GDateTime *now = g_date_time_new_now_local();
    g_mime_message_set_date(msg, now);
    g_date_time_unref(now);
    char id[160];
    snprintf(id, sizeof id, "%s.dsn@%s", job->id, job->hostname);
    g_mime_message_set_message_id(msg, id);
    g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted", "auto-replied", NULL);

    GMimeMultipart *report = g_mime_multipart_new_with_subtype("report");
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(report), "report-type",
                                             "delivery-status");
    char human[1024];
    snprintf(human, sizeof human,
             "This is the mail system at host %s.\n\n"
             "Your message was delivered to some of its recipients, but the receiving\n"
             "domain's rules refused the recipients listed in the attached report.\n"
             "The original message's headers are attached.\n",
             job->hostname);
    GMimeTextPart *text = g_mime_text_part_new_with_subtype("plain");
    g_mime_text_part_set_text(text, human);
    g_mime_multipart_add(report, GMIME_OBJECT(text));
    g_object_unref(text);

    struct buf status = {0};
    char date[64];
    struct tm tm;
    localtime_r(&job->arrival, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    buf_printf(&status, "Reporting-MTA: dns; %s\nX-Sluice-Queue-ID: %s\nArrival-Date: %s\n",
               job->hostname, job->qid, date);
    buf_puts(&status, job->dsn_report);
    GMimePart *ds = mime_part_new("message", "delivery-status", status.data, status.len);
    g_mime_multipart_add(report, GMIME_OBJECT(ds));
    g_object_unref(ds);
    buf_free(&status);

    size_t hlen = headers_length(job->content.data, job->content.len);
    GMimePart *orig = mime_part_new("text", "rfc822-headers", job->content.data, hlen);
    g_mime_multipart_add(report, GMIME_OBJECT(orig));
    g_object_unref(orig);

    g_mime_message_set_mime_part(msg, GMIME_OBJECT(report));
    g_object_unref(report);
    mime_message_write(msg, out);
    g_object_unref(msg);
}

static int dsn_deliver(const void *state, struct spool_job *job, char *err, size_t errlen)
{
    struct buf dsn = {0};
    dsn_build(job, &dsn);
    char host[256];
    const char *colon = strrchr(job->dsn_relay, ':');
    int port = colon ? atoi(colon + 1) : 25;
    snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - job->dsn_relay) : 255,
             job->dsn_relay);
    char *rcpt[1] = {job->mail_from};
    int rc = smtp_send(host, port, SMTP_TLS_OPPORTUNISTIC, "", rcpt, 1, dsn.data, dsn.len, 30, err,
                       errlen);
    buf_free(&dsn);
    return rc == SMTP_SEND_REJECTED ? ACTION_DELIVER_REJECTED : rc == 0 ? 0 : -1;
}

static const struct action_type dsn_type = {
    .name = "dsn",
    .deliver = dsn_deliver,
};

static const struct action dsn = {.type = &dsn_type};

const struct action *dsn_action(void)
{
    return &dsn;
}
