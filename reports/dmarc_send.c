#include "reports/dmarc_send.h"
#include "delivery/mime_part.h"
#include "delivery/smtp_client.h"
#include "auth/org_domain.h"
#include "auth/dns.h"
#include "config/config.h"
#include "core/xalloc.h"
#include "reports/dmarc_aggregate.h"
#include "dmarc/unpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

size_t dmarc_rua_mailtos(const char *rua, char ***out)
{
    size_t n = 0, cap = 0;
    *out = NULL;
    const char *p = rua;
    while (p && *p) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        const char *end = p + len;
        if (len > 7 && strncasecmp(p, "mailto:", 7) == 0) {
            const char *a = p + 7;
            size_t al = (size_t)(end - a);
            const char *bang = memchr(a, '!', al); /* "!10m": a size limit */
            if (bang)
                al = (size_t)(bang - a);
            while (al && (a[al - 1] == ' ' || a[al - 1] == '\t'))
                al--;
            if (al && memchr(a, '@', al)) {
                *out = xgrow(*out, sizeof **out, &cap, n);
                (*out)[n++] = xstrndup(a, al);
            }
        }
        p = *end ? end + 1 : end;
    }
    return n;
}

int dmarc_rua_authorized(const struct config *cfg, const char *domain, const char *addr)
{
    const char *ad = strrchr(addr, '@');
    if (!ad)
        return 0;
    ad++;
    char org1[256], org2[256];
    dmarc_org_domain(domain, org1, sizeof org1);
    dmarc_org_domain(ad, org2, sizeof org2);
    if (org1[0] && strcasecmp(org1, org2) == 0)
        return 1;
    dns_begin(&cfg->dns);
    char *name = xasprintf("%s._report._dmarc.%s", domain, ad);
    struct ub_result *res = NULL;
    enum dns_status st = dns_query(name, 16 /* TXT */, &res);
    free(name);
    if (st == DNS_TEMPFAIL)
        return -1;
    int ok = 0;
    if (st == DNS_OK) {
        size_t count;
        char **txt = dns_txt_strings(res, &count);
        for (size_t i = 0; i < count; i++) {
            const char *t = txt[i] + strspn(txt[i], " \t");
            if (strncasecmp(t, "v=DMARC1", 8) == 0 &&
                (t[8] == ';' || t[8] == ' ' || t[8] == '\t' || t[8] == '\0'))
                ok = 1;
            free(txt[i]);
        }
        free(txt);
    }
    ub_resolve_free(res);
    return ok;
}

const char *dmarc_node(const struct config *cfg)
{
    return cfg->server.hostname ? cfg->server.hostname : "localhost";
}

void dmarc_report_message(const struct config *cfg, const char *receiver, const char *domain,
                          time_t begin, time_t end, const struct buf *xml, char *const *to,
                          size_t nto, struct buf *out)
{
    const struct dmarc_reports_cfg *rc = &cfg->dmarc_reports;
    char id[512], subject[1024], file[768], human[1024];
    dmarc_report_id(domain, begin, end, dmarc_node(cfg), id, sizeof id);
    snprintf(subject, sizeof subject, "Report Domain: %s Submitter: %s Report-ID: <%s>", domain,
             receiver, id);
    snprintf(file, sizeof file, "%s!%s!%lld!%lld.xml.gz", receiver, domain, (long long)begin,
             (long long)end - 1);
    GMimeMessage *msg = g_mime_message_new(TRUE);
    g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, rc->org_name, rc->email);
    for (size_t i = 0; i < nto; i++)
        g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, to[i]);
    g_mime_message_set_subject(msg, subject, NULL);
    GDateTime *now = g_date_time_new_now_utc();
    g_mime_message_set_date(msg, now);
    g_date_time_unref(now);
    char mid[600];
    snprintf(mid, sizeof mid, "%s.dmarc", id);
    g_mime_message_set_message_id(msg, mid);
    g_mime_object_set_header(GMIME_OBJECT(msg), "Auto-Submitted", "auto-generated", NULL);

    GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
    snprintf(human, sizeof human,
             "This is a DMARC aggregate report (RFC 7489) from %s for %s,\n"
             "covering %lld to %lld (Unix time). The report is attached.\n",
             rc->org_name, domain, (long long)begin, (long long)end - 1);
    GMimePart *text = mime_part_new("text", "plain", human, strlen(human));
    g_mime_multipart_add(mixed, GMIME_OBJECT(text));
    g_object_unref(text);
    struct buf gz = {0};
    report_gzip(xml->data, xml->len, &gz);
    GMimePart *att = mime_part_new("application", "gzip", gz.data, gz.len);
    g_mime_part_set_content_encoding(att, GMIME_CONTENT_ENCODING_BASE64);
    g_mime_part_set_filename(att, file);
    g_mime_multipart_add(mixed, GMIME_OBJECT(att));
    g_object_unref(att);
    buf_free(&gz);
    g_mime_message_set_mime_part(msg, GMIME_OBJECT(mixed));
    g_object_unref(mixed);
    mime_message_write(msg, out);
    g_object_unref(msg);
}

int dmarc_report_send(const struct config *cfg, const char *receiver, const char *domain,
                      time_t begin, time_t end, const struct buf *xml, const char *rua,
                      struct buf *skipped, char *err, size_t errlen)
{
    const char *relay = cfg->server.bounce_relay;
    if (!relay) {
        snprintf(err, errlen, "server { bounce_relay } is not set: nowhere to send reports");
        return -1;
    }
    char **addrs;
    size_t n = dmarc_rua_mailtos(rua, &addrs), k = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = dmarc_rua_authorized(cfg, domain, addrs[i]);
        if (ok == 1) {
            addrs[k++] = addrs[i];
            continue;
        }
        buf_printf(skipped, "%s: %s\n", addrs[i],
                   ok < 0 ? "DNS failure checking the authorization (RFC 7489 7.1)"
                          : "outside the domain and not authorized (RFC 7489 7.1)");
        free(addrs[i]);
    }
    int rc = (int)k;
    if (k > 0) {
        struct buf mail = {0};
        dmarc_report_message(cfg, receiver, domain, begin, end, xml, addrs, k, &mail);
        char host[256];
        const char *colon = strrchr(relay, ':');
        int port = colon ? atoi(colon + 1) : 25;
        snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - relay) : 255, relay);
        if (smtp_send(host, port, SMTP_TLS_OPPORTUNISTIC, NULL, cfg->dmarc_reports.email, addrs, k,
                      NULL, mail.data, mail.len, 60, err, errlen) != 0)
            rc = -1;
        buf_free(&mail);
    }
    for (size_t i = 0; i < k; i++)
        free(addrs[i]);
    free(addrs);
    return rc;
}
