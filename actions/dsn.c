/* RFC 3464 DSN: multipart/report; report-type=delivery-status, with a human-readable part, the
 * message/delivery-status part and the original headers (text/rfc822-headers). */
#include "actions/dsn.h"
#include "actions/action.h"
#include "delivery/mime_part.h"
#include "delivery/smtp_client.h"
#include "auth/dns.h"
#include "core/headers.h"
#include "core/utf8.h"
#include "spool/spool.h"

#include <arpa/inet.h>
#include <gmime/gmime.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

void dsn_build(const struct spool_job *job, struct buf *out)
{
    GMimeMessage *msg = g_mime_message_new(TRUE);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, "Mail Delivery System", job->dsn_from);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, job->env.mail_from);
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
             "%s\n",
             job->hostname,
             job->env.ret == DSN_RET_FULL ? "The original message is attached."
                                          : "The original message's headers are attached.");
    GMimeTextPart *text = g_mime_text_part_new_with_subtype("plain");
    g_mime_text_part_set_text(text, human);
    g_mime_multipart_add(report, GMIME_OBJECT(text));
    g_object_unref(text);

    struct buf status = {0};
    char date[64];
    struct tm tm;
    localtime_r(&job->env.arrival, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    /* RFC 3464 §2.2.1: the client's ENVID comes first, as given (xtext decoded). */
    if (job->env.dsn_envid)
        buf_printf(&status, "Original-Envelope-Id: %s\n", job->env.dsn_envid);
    buf_printf(&status, "Reporting-MTA: dns; %s\nX-Sluice-Queue-ID: %s\nArrival-Date: %s\n",
               job->hostname, job->env.qid, date);
    buf_puts(&status, job->dsn_report);
    /* RFC 6533 §6: a report on an SMTPUTF8 message may hold UTF-8, so it uses the global
     * types. */
    bool global = job->env.smtputf8;
    GMimePart *ds = mime_part_new("message", global ? "global-delivery-status" : "delivery-status",
                                  status.data, status.len);
    g_mime_multipart_add(report, GMIME_OBJECT(ds));
    g_object_unref(ds);
    buf_free(&status);

    /* RFC 3461 §4.3: RET=FULL asks for the whole message back; HDRS, or nothing, the headers. */
    size_t hlen = job->env.ret == DSN_RET_FULL
                      ? job->content.len
                      : headers_length(job->content.data, job->content.len);
    GMimePart *orig =
        job->env.ret == DSN_RET_FULL
            ? mime_part_new("message", global ? "global" : "rfc822", job->content.data, hlen)
        : global ? mime_part_new("message", "global-headers", job->content.data, hlen)
                 : mime_part_new("text", "rfc822-headers", job->content.data, hlen);
    g_mime_multipart_add(report, GMIME_OBJECT(orig));
    g_object_unref(orig);

    g_mime_message_set_mime_part(msg, GMIME_OBJECT(report));
    g_object_unref(report);
    mime_message_write(msg, out);
    g_object_unref(msg);
}

struct mx {
    unsigned pref;
    char host[256];
};

static int cmp_mx(const void *a, const void *b)
{
    const struct mx *x = a, *y = b;
    return x->pref < y->pref ? -1 : x->pref > y->pref;
}

/* The sender domain's mail exchangers, by preference; the domain itself when it has no MX
 * (RFC 5321 5.1). Returns how many (at most max), 0 when none, -1 on DNS trouble, -2 for a
 * null MX (RFC 7505: the domain accepts no mail). */
static int find_mx(const char *domain, struct mx *out, int max, char *err, size_t errlen)
{
    struct ub_result *res = NULL;
    enum dns_status st = dns_query(domain, 15, &res);
    if (st == DNS_TEMPFAIL) {
        snprintf(err, errlen, "MX lookup for %s: %s", domain, dns_last_error());
        return -1;
    }
    int n = 0;
    for (int i = 0; st == DNS_OK && res->data[i] && n < max; i++) {
        const unsigned char *d = (const unsigned char *)res->data[i];
        if (res->len[i] < 3)
            continue;
        if (res->len[i] == 3 && d[2] == 0) {
            ub_resolve_free(res);
            snprintf(err, errlen, "%s has a null MX: it accepts no mail", domain);
            return -2;
        }
        if (dns_wire_name(d + 2, (size_t)res->len[i] - 2, out[n].host, sizeof out[n].host) < 0)
            continue;
        out[n++].pref = (unsigned)(d[0] << 8 | d[1]);
    }
    if (res)
        ub_resolve_free(res);
    if (n == 0 && st != DNS_OK) {
        snprintf(out[0].host, sizeof out[0].host, "%s", domain);
        out[0].pref = 0;
        n = 1;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_mx);
    return n;
}

/* Sends through the sender domain's MX hosts, in order, to the IPv4 addresses the DNS layer
 * gives for each (port 25). */
static int send_via_mx(const struct spool_job *job, const struct buf *dsn, char *err, size_t errlen)
{
    const char *domain = strrchr(job->env.mail_from, '@');
    struct mx mx[8];
    int n = domain ? find_mx(domain + 1, mx, 8, err, errlen) : 0;
    if (n == -2)
        return SMTP_SEND_REJECTED;
    if (n <= 0) {
        if (n == 0)
            snprintf(err, errlen, "no mail exchanger for %s", job->env.mail_from);
        return SMTP_SEND_TEMPFAIL;
    }
    char *rcpt[1] = {job->env.mail_from};
    int rc = SMTP_SEND_TEMPFAIL;
    for (int i = 0; i < n && rc == SMTP_SEND_TEMPFAIL; i++) {
        struct ub_result *res = NULL;
        if (dns_query(mx[i].host, 1, &res) != DNS_OK) {
            snprintf(err, errlen, "no address for MX %s", mx[i].host);
            if (res)
                ub_resolve_free(res);
            continue;
        }
        for (int a = 0; res->data[a] && res->len[a] == 4 && rc == SMTP_SEND_TEMPFAIL; a++) {
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, res->data[a], ip, sizeof ip);
            rc = smtp_send(ip, 25, SMTP_TLS_OPPORTUNISTIC, NULL, "", rcpt, 1,
                           &(struct smtp_send_ext){.smtputf8 = utf8_non_ascii(job->env.mail_from)},
                           dsn->data, dsn->len, 30, err, errlen);
        }
        ub_resolve_free(res);
    }
    return rc;
}

static int dsn_deliver(const void *state, struct spool_job *job, char *err, size_t errlen)
{
    struct buf dsn = {0};
    dsn_build(job, &dsn);
    int rc;
    if (job->dsn_relay && job->dsn_relay[0]) {
        char host[256];
        const char *colon = strrchr(job->dsn_relay, ':');
        int port = colon ? atoi(colon + 1) : 25;
        snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - job->dsn_relay) : 255,
                 job->dsn_relay);
        char *rcpt[1] = {job->env.mail_from};
        rc = smtp_send(host, port, SMTP_TLS_OPPORTUNISTIC, NULL, "", rcpt, 1,
                       &(struct smtp_send_ext){.smtputf8 = utf8_non_ascii(job->env.mail_from)},
                       dsn.data, dsn.len, 30, err, errlen);
    } else {
        rc = send_via_mx(job, &dsn, err, errlen);
    }
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
