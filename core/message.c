/* Message context and the trace headers of RFC 5321 §4.4. */
#include "core/message.h"
#include "core/xalloc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct message *message_new(const struct envelope *env)
{
    struct message *m = xcalloc(1, sizeof *m);
    if (env)
        envelope_copy(&m->env, env);
    else
        envelope_init(&m->env);
    if (!m->env.qid[0]) {
        m->env.arrival = time(NULL);
        message_make_qid(m->env.qid, sizeof m->env.qid);
    }
    return m;
}

void message_free(struct message *m)
{
    if (!m)
        return;
    envelope_free(&m->env);
    buf_free(&m->body);
    for (size_t i = 0; i < m->nadded; i++) {
        free(m->added[i].name);
        free(m->added[i].value);
    }
    free(m->added);
    if (m->auth && m->auth_free)
        m->auth_free(m->auth);
    free(m);
}

void message_add_rcpt(struct message *m, const char *addr)
{
    envelope_add_rcpt(&m->env, addr);
}

void message_add_header(struct message *m, const char *name, const char *value)
{
    m->added = xgrow(m->added, sizeof *m->added, &m->added_cap, m->nadded);
    m->added[m->nadded].name = xstrdup(name);
    m->added[m->nadded].value = xstrdup(value);
    m->nadded++;
}

void message_trace_headers(const struct message *m, const char *rcpt, struct buf *out)
{
    const struct envelope *e = &m->env;
    char date[64];
    struct tm tm;
    localtime_r(&e->arrival, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);

    buf_printf(out, "Return-Path: <%s>\r\n", e->mail_from ? e->mail_from : "");
    /* RFC 5321 4.4 TCP-info: an address literal, "IPv6:" before IPv6 addresses. */
    buf_printf(out, "Received: from %s (%s [%s%s])\r\n", e->helo ? e->helo : "unknown",
               e->client_rdns ? e->client_rdns : "unknown",
               strchr(e->client_ip, ':') ? "IPv6:" : "", e->client_ip);
    /* RFC 6531 §4.3: UTF8SMTP(S) when the transaction used SMTPUTF8. */
    const char *proto = e->smtputf8 ? (e->tls ? "UTF8SMTPS" : "UTF8SMTP")
                        : e->esmtp  ? (e->tls ? "ESMTPS" : "ESMTP")
                                    : (e->tls ? "SMTPS" : "SMTP");
    if (e->tls)
        buf_printf(out, "\tby %s (sluice) with %s (%s:%s)\r\n", m->hostname, proto, e->tls_version,
                   e->tls_cipher);
    else
        buf_printf(out, "\tby %s (sluice) with %s\r\n", m->hostname, proto);
    if (rcpt)
        buf_printf(out, "\tid %s\r\n\tfor <%s>; %s\r\n", e->qid, rcpt, date);
    else
        buf_printf(out, "\tid %s; %s\r\n", e->qid, date);
    for (size_t i = m->nadded; i-- > 0;)
        buf_printf(out, "%s: %s\r\n", m->added[i].name, m->added[i].value);
}

void message_make_qid(char *qid, size_t len)
{
    /* Time in microseconds plus a process-wide counter: unique within this host and sortable,
     * like Postfix's long queue ids. */
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned n = atomic_fetch_add(&counter, 1);
    snprintf(qid, len, "%010llX%05X%03X", (unsigned long long)ts.tv_sec,
             (unsigned)(ts.tv_nsec / 1000) & 0xFFFFF, n & 0xFFF);
}
