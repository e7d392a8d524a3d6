/* SMTP session state machine (in the manner of OpenSMTPD's smtp_session.c): every input line is
 * a command of the commands[] table, which says in which states it may run; every state change
 * goes through enter_state. Replies are queued on the bufferevent in order, which is all RFC
 * 2920 pipelining asks of a server. Work that may block (actions, fsync) leaves the session in
 * S_BUSY until the worker pool calls back; input keeps queueing meanwhile. */
#include "receiver/session.h"
#include "config/config.h"
#include "core/address.h"
#include "core/cidr.h"
#include "core/envelope.h"
#include "core/log.h"
#include "core/message.h"
#include "core/sockaddr.h"
#include "core/xalloc.h"
#include "receiver/proxy_proto.h"
#include "receiver/server.h"
#include "receiver/smtp_cmd.h"
#include "receiver/smtp_data.h"
#include "receiver/xclient.h"
#include "pipeline/message_job.h"
#include "receiver/smtp_stats.h"
#include "rules/rcpt_index.h"
#include "rules/rcpt_judge.h"
#include "rules/metrics.h"
#include "rules/ruleset.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* RFC 5321 §4.5.3.1.4: 512 octets including CRLF. */
#define SMTP_CMD_LINE_MAX 512
/* Stop reading while this much output is unread by the client (pipelining abuse). */
#define OUTPUT_HIGH_WATER (256 * 1024)
/* Input buffered at most before reading pauses (DATA is consumed as it arrives). */
#define INPUT_HIGH_WATER (256 * 1024)

enum state {
    S_NEW,       /* client not admitted yet */
    S_PROXY,     /* waiting for the PROXY protocol header; nothing sent yet */
    S_GREETED,   /* banner sent; reading commands, no HELO/EHLO yet */
    S_HELO,      /* HELO/EHLO known, no transaction */
    S_MAIL,      /* MAIL accepted, no recipient yet */
    S_RCPT,      /* at least one recipient accepted */
    S_CHUNKS,    /* BDAT chunks received, no LAST yet: reading commands */
    S_DATA,      /* reading message content */
    S_BDAT,      /* reading the octets of one BDAT chunk */
    S_BUSY,      /* a worker judges the message */
    S_STARTTLS,  /* 220 sent, waiting for it to flush before the handshake */
    S_HANDSHAKE, /* TLS handshake in progress */
    S_CLOSING,   /* last reply queued; free once flushed */
    S_STATES
};

static const char *const state_names[S_STATES] = {
    [S_NEW] = "new",         [S_PROXY] = "proxy",       [S_GREETED] = "greeted",
    [S_HELO] = "helo",       [S_MAIL] = "mail",         [S_RCPT] = "rcpt",
    [S_CHUNKS] = "chunks",   [S_BDAT] = "bdat",         [S_DATA] = "data",
    [S_BUSY] = "busy",       [S_STARTTLS] = "starttls", [S_HANDSHAKE] = "handshake",
    [S_CLOSING] = "closing",
};

struct session {
    struct server *srv;
    char id[24];              /* on every log line of the session and its messages */
    struct timespec data_end; /* when the final dot of the message in the rules was read */
    struct server_conn *conn; /* our entry in the server's list */
    struct bufferevent *bev;
    enum state state;
    char listen_addr[80];
    /* The client as known so far: the peer, or the address a PROXY header / XCLIENT carried,
     * its port, rDNS (XCLIENT NAME; NULL when unknown), HELO, ESMTP, TLS. An envelope without
     * sender or recipients: each transaction's message starts as a copy of it. */
    struct envelope client;
    char peer_ip[64]; /* the TCP peer (the balancer when proxied) */
    int proxied;
    int xclient_ok;
    time_t started;

    struct config *cfg;  /* pinned for the current transaction */
    struct message *msg; /* current transaction, NULL before MAIL */
    struct data_reader data;
    /* The BDAT chunk being read: octets still to come, LAST, and the state to return to. When
     * chunk_refusal is set the octets are discarded and it is the chunk's reply. */
    size_t chunk_left;
    size_t chunk_size;
    int chunk_last;
    enum state chunk_prev;
    const char *chunk_refusal;
    int chunk_too_big; /* the refusal is the size limit: the transaction ends with the chunk */
    int discarding;    /* skipping the rest of an over-long command line */
    int errors;
    int close_polls;
    int job_pending;
    int dead;            /* the connection is gone; free when the job returns */
    int stop_after_txn;  /* server shutdown: close after the current transaction */
    struct event *timer; /* command / DATA deadline (slow-drip protection) */
    struct event *flush; /* writes the replies of this loop turn (plain sessions) */
    int direct;          /* replies go to the socket from flush, not through EV_WRITE */

    uint32_t *hits; /* scratch for recipient index lookups */
    size_t hits_cap;
    unsigned n_msgs, n_rcpt_ok, n_rcpt_rejected;
    const char *end_reason;
};

static void process_input(struct session *s);
static void session_free(struct session *s);

/* The one place the state changes, so that a session's course can be traced. */
static void enter_state(struct session *s, enum state next)
{
    if (s->state == next)
        return;
    log_msg_with(LOG_DEBUG, "session", s->id, "session %s: %s -> %s", s->client.client_ip,
                 state_names[s->state], state_names[next]);
    s->state = next;
}

/* A session id: "S", the time and a counter, unique on this host (the event loop is one
 * thread, so a plain counter does). The counter starts at the microsecond of the first
 * session, so that a restart within the same second does not repeat the ids before it. */
static void make_session_id(char *id, size_t len)
{
    static unsigned counter;
    static int seeded;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!seeded) {
        counter = (unsigned)(ts.tv_nsec / 1000);
        seeded = 1;
    }
    snprintf(id, len, "S%llX%05X", (unsigned long long)ts.tv_sec, counter++ & 0xFFFFF);
}

/* The code and enhanced status code of an SMTP reply ("550 5.1.1 text"); status "" without
 * one. */
static int reply_code(const char *reply, char *status, size_t len)
{
    status[0] = '\0';
    int code = atoi(reply);
    const char *p = strchr(reply, ' ');
    if (p && p[1] >= '2' && p[1] <= '5' && p[2] == '.') {
        size_t n = strcspn(p + 1, " ");
        if (n < len) {
            memcpy(status, p + 1, n);
            status[n] = '\0';
        }
    }
    return code;
}

/* One line per refused MAIL or RCPT (event "mail_refused" / "rcpt_refused"): the address (NULL
 * when the command did not parse), the reply's codes and the reason of the metrics. */
static void log_refusal(struct session *s, const char *event, const char *addr_key,
                        const char *addr, const char *reply, const char *reason)
{
    char status[16];
    int code = reply_code(reply, status, sizeof status);
    struct log_field f[] = {
        LOG_STR("session", s->id),
        LOG_STR("qid", s->msg ? s->msg->env.qid : NULL),
        LOG_STR("client", s->client.client_ip),
        LOG_STR(addr_key, addr),
        LOG_INT("code", code),
        LOG_STR("status", status[0] ? status : NULL),
        LOG_STR("reason", reason),
        LOG_STR("reply", reply),
    };
    log_fields(LOG_INFO, event, f, sizeof f / sizeof f[0]);
}

/* The "tls" line of a failed handshake: the reason of the metrics and OpenSSL's words (e: its
 * error, 0 when it gave none). */
static void log_tls_failure(struct session *s, enum tls_failure why, unsigned long e)
{
    char text[256] = "";
    if (e)
        ERR_error_string_n(e, text, sizeof text);
    else if (why == TLS_FAIL_CLOSED)
        snprintf(text, sizeof text, "client closed the connection");
    else if (why == TLS_FAIL_TIMEOUT)
        snprintf(text, sizeof text, "timeout");
    struct log_field f[] = {
        LOG_STR("session", s->id),
        LOG_STR("client", s->client.client_ip),
        LOG_STR("result", "failed"),
        LOG_STR("reason", tls_failure_name(why)),
        LOG_STR("error", text[0] ? text : NULL),
    };
    log_fields(LOG_WARN, "tls", f, sizeof f / sizeof f[0]);
}

/* The client changed (a PROXY header, XCLIENT): text says how; the new address and port follow
 * as fields, with the peer that told us. */
static void log_client_change(struct session *s, const char *text)
{
    struct log_field f[] = {
        LOG_STR("session", s->id),
        LOG_STR("msg", text),
        LOG_STR("client", s->client.client_ip),
        LOG_INT("port", s->client.client_port),
        LOG_STR("via", s->peer_ip),
    };
    log_fields(LOG_INFO, "log", f, sizeof f / sizeof f[0]);
}

/* Reading commands, in any phase of the dialogue. */
static int in_commands(const struct session *s)
{
    return s->state >= S_GREETED && s->state <= S_CHUNKS;
}

/* The command state when no transaction is open. */
static enum state idle_state(const struct session *s)
{
    return s->client.helo ? S_HELO : S_GREETED;
}

/* --- output ------------------------------------------------------------------------------ */

static void on_write(struct bufferevent *bev, void *arg);

/* A plain session keeps EV_WRITE off: libevent would otherwise add the write event for every
 * reply and remove it again once written, two epoll_ctl calls and an extra loop turn per
 * reply, about 16 system calls per message. Instead the replies of one loop turn are written
 * by this event, activated by reply() and run at the end of the same turn; only when the
 * socket does not take everything (a client not reading) does libevent get EV_WRITE, and
 * on_write turns it off again once the buffer is empty. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    if (!s->direct || !s->bev)
        return;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    if (evbuffer_get_length(out) == 0)
        return;
    /* A socket bufferevent keeps the front of its output frozen so that only its own writer
     * drains it; that writer does exactly this around its write. */
    evbuffer_unfreeze(out, 1);
    int n = evbuffer_write(out, bufferevent_getfd(s->bev));
    evbuffer_freeze(out, 1);
    if (n < 0 || evbuffer_get_length(out) > 0) {
        /* Full socket or an error: libevent writes the rest, or reports the error through
         * on_event, and calls on_write when done. */
        bufferevent_enable(s->bev, EV_WRITE);
        return;
    }
    on_write(s->bev, s); /* what libevent would have called; it may free s */
}

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct session *s, const char *fmt, ...)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
    if (s->direct)
        event_active(s->flush, 0, 1);
}

/* A reply that counts as a client error; too many of them end the session. */
static void reply_error(struct session *s, const char *text)
{
    reply(s, "%s", text);
    if (++s->errors >= server_config(s->srv)->server.max_errors) {
        reply(s, "421 4.7.0 %s Error: too many errors", server_config(s->srv)->server.hostname);
        s->end_reason = "too many errors";
        enter_state(s, S_CLOSING);
    }
}

/* Bytes not yet handed to the kernel, including what a TLS filter passed to the socket
 * bufferevent beneath it. */
static size_t output_pending(struct session *s)
{
    size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    if (under)
        n += evbuffer_get_length(bufferevent_get_output(under));
    return n;
}

/* Frees a closing session once its last reply is out; polls briefly for the TLS case, where
 * the write callback fires before the socket bufferevent beneath has written. */
static void free_when_flushed(struct session *s)
{
    if (output_pending(s) == 0 || ++s->close_polls > 500) {
        session_free(s);
        return;
    }
    struct timeval tv = {0, 10000};
    evtimer_add(s->timer, &tv);
}

static void close_when_flushed(struct session *s, const char *why)
{
    if (!s->end_reason)
        s->end_reason = why;
    enter_state(s, S_CLOSING);
    bufferevent_disable(s->bev, EV_READ);
    /* Never free here: callers still hold s. on_write frees once the output is gone; with
     * nothing left to write, the timer does it on the next loop turn. */
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
        struct timeval now = {0, 0};
        evtimer_add(s->timer, &now);
    }
}

/* A PROXY protocol listener's connection that never got a usable header: closed without a
 * word, since whatever it sent was not meant for SMTP. why is a static string. */
static void proxy_refuse(struct session *s, const char *why)
{
    server_proxy_refused(s->id, s->peer_ip, s->listen_addr, why);
    s->end_reason = why;
    session_free(s);
}

/* --- deadlines --------------------------------------------------------------------------- */

static void arm_timer(struct session *s, long long seconds)
{
    struct timeval tv = {.tv_sec = (time_t)seconds};
    evtimer_add(s->timer, &tv);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    if (s->state == S_CLOSING) {
        free_when_flushed(s);
        return;
    }
    if (s->state == S_BUSY)
        return;
    if (s->state == S_PROXY) {
        proxy_refuse(s, "no PROXY protocol header within the command timeout");
        return;
    }
    if (s->state == S_HANDSHAKE || s->state == S_STARTTLS) {
        if (s->state == S_HANDSHAKE) {
            atomic_fetch_add(&smtp_stats.tls_failures[TLS_FAIL_TIMEOUT], 1);
            log_tls_failure(s, TLS_FAIL_TIMEOUT, 0);
        }
        s->end_reason = "timeout during TLS handshake";
        session_free(s);
        return;
    }
    if ((s->state == S_DATA || s->state == S_BDAT) && s->msg)
        message_log(s->msg, s->client.client_ip, s->client.helo, "not accepted", NULL, NULL,
                    s->state == S_DATA ? "timeout during DATA" : "timeout during BDAT");
    reply(s, "421 4.4.2 %s Error: timeout exceeded", server_config(s->srv)->server.hostname);
    close_when_flushed(s, "timeout");
}

/* --- transaction ------------------------------------------------------------------------- */

static void txn_reset(struct session *s)
{
    message_free(s->msg);
    s->msg = NULL;
    config_release(s->cfg);
    s->cfg = NULL;
}

static const struct server_cfg *scfg(struct session *s)
{
    return &(s->cfg ? s->cfg : server_config(s->srv))->server;
}

static void log_session(struct session *s)
{
    struct log_field f[] = {
        LOG_STR("client", s->client.client_ip),
        LOG_STR("helo", s->client.helo),
        LOG_STR("tls", s->client.tls ? s->client.tls_version : NULL),
        LOG_INT("messages", s->n_msgs),
        LOG_STR("via",
                s->proxied || strcmp(s->client.client_ip, s->peer_ip) != 0 ? s->peer_ip : NULL),
        LOG_INT("rcpt_accepted", s->n_rcpt_ok),
        LOG_INT("rcpt_rejected", s->n_rcpt_rejected),
        LOG_SECS("duration", time(NULL) - s->started),
        LOG_STR("end", s->end_reason ? s->end_reason : "disconnect"),
        LOG_STR("session", s->id),
    };
    log_fields(LOG_INFO, "session", f, sizeof f / sizeof f[0]);
}

/* --- the message job's return ------------------------------------------------------------ */

static void on_message_done(void *arg, const struct message_job_result *r)
{
    struct session *s = arg;
    s->job_pending = 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    histogram_observe(&smtp_stats.data_reply,
                      (double)(now.tv_sec - s->data_end.tv_sec) +
                          (double)(now.tv_nsec - s->data_end.tv_nsec) / 1e9);
    if (!s->dead) {
        reply(s, "%s", r->reply);
        if (r->reply[0] == '2')
            s->n_msgs++;
    }
    atomic_fetch_add(
        r->reply[0] == '2' ? &smtp_stats.messages_accepted : &smtp_stats.messages_refused, 1);
    atomic_fetch_add(&smtp_stats.dsn_not_sent, r->dsn_not_sent);
    if (s->dead) {
        session_free(s);
        return;
    }
    enter_state(s, idle_state(s));
    if (s->stop_after_txn) {
        reply(s, "421 4.3.2 %s Service shutting down", server_config(s->srv)->server.hostname);
        close_when_flushed(s, "shutdown");
        return;
    }
    arm_timer(s, scfg(s)->command_timeout);
    process_input(s);
}

static void finish_data(struct session *s)
{
    clock_gettime(CLOCK_MONOTONIC, &s->data_end);
    int must_close;
    const char *verdict = data_reader_verdict(&s->data, &must_close);
    atomic_fetch_add(&smtp_stats.bytes_received, s->data.received);
    if (verdict) {
        atomic_fetch_add(&smtp_stats.messages_refused, 1);
        if (s->data.defects & DATA_TOO_BIG)
            atomic_fetch_add(&smtp_stats.rcpt_rejected[REJECT_SIZE], s->msg->env.nrcpts);
        message_log(s->msg, s->client.client_ip, s->client.helo, verdict, NULL, NULL,
                    "message refused while reading DATA");
        txn_reset(s);
        enter_state(s, idle_state(s));
        if (must_close) {
            /* The session ends anyway: no error count, no second 421. And no 221, which
             * answers QUIT only (RFC 5321 §4.1.1.10); the 550 (or 521) is the last word, as in
             * Postfix's smtpd_forbid_bare_newline reject mode. */
            reply(s, "%lld%s", scfg(s)->bare_newline_reject_code, verdict + 3);
            close_when_flushed(s, "smuggling defence: bare CR or LF in DATA");
            return;
        }
        reply_error(s, verdict);
        return;
    }
    /* The envelope is complete since MAIL (the client cannot change within a transaction:
     * HELO, STARTTLS and XCLIENT end it); only the arrival is taken now, at the end of DATA. */
    struct message *m = s->msg;
    m->env.arrival = time(NULL);
    m->hostname = s->cfg->server.hostname;

    const struct rule_set *rs = config_rule_set_for(s->cfg, s->listen_addr);
    struct config *cfg = s->cfg;
    s->msg = NULL;
    s->cfg = NULL; /* the job owns the transaction's reference now */
    enter_state(s, S_BUSY);
    s->job_pending = 1;
    evtimer_del(s->timer);
    message_job_submit(server_pool(s->srv), server_retry(s->srv), m, cfg, rs, on_message_done, s);
}

/* --- commands ---------------------------------------------------------------------------- */

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

static void greet(struct session *s)
{
    reply(s, "220 %s ESMTP sluice", server_config(s->srv)->server.hostname);
}

static void cmd_helo(struct session *s, const struct smtp_cmd *c)
{
    if (!printable(c->arg) || strlen(c->arg) > 255) {
        reply_error(s, "501 5.5.4 Syntax: EHLO hostname (printable ASCII, at most 255 octets)");
        return;
    }
    txn_reset(s);
    free(s->client.helo);
    s->client.helo = xstrdup(c->arg);
    enter_state(s, S_HELO);
    const struct server_cfg *sc = &server_config(s->srv)->server;
    if (c->verb == CMD_HELO) {
        s->client.esmtp = 0;
        reply(s, "250 %s", sc->hostname);
        return;
    }
    s->client.esmtp = 1;
    reply(s, "250-%s", sc->hostname);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %lld", sc->max_message_size);
    reply(s, "250-8BITMIME");
    reply(s, "250-SMTPUTF8");
    reply(s, "250-DSN");
    reply(s, "250-CHUNKING");
    if (server_tls(s->srv) && !s->client.tls)
        reply(s, "250-STARTTLS");
    if (s->xclient_ok)
        reply(s, "250-XCLIENT %s", XCLIENT_ATTRS);
    reply(s, "250 ENHANCEDSTATUSCODES");
}

static void cmd_mail(struct session *s, const struct smtp_cmd *c)
{
    const struct server_cfg *sc = &server_config(s->srv)->server;
    if (c->size > sc->max_message_size) {
        atomic_fetch_add(&smtp_stats.mail_rejected[MAIL_REJECT_SIZE], 1);
        const char *refusal = "552 5.3.4 Message size exceeds fixed limit";
        log_refusal(s, "mail_refused", "from", c->path, refusal,
                    mail_reject_reason_name(MAIL_REJECT_SIZE));
        reply_error(s, refusal);
        return;
    }
    s->cfg = config_retain(server_config(s->srv));
    s->msg = message_new(&s->client);
    snprintf(s->msg->session_id, sizeof s->msg->session_id, "%s", s->id);
    s->msg->env.mail_from = xstrdup(c->path);
    s->msg->env.smtputf8 = c->smtputf8;
    s->msg->env.ret = c->ret;
    s->msg->env.dsn_envid = c->envid[0] ? xstrdup(c->envid) : NULL;
    enter_state(s, S_MAIL);
    reply(s, "250 2.1.0 Ok");
}

/* A recipient refused at RCPT because no rule that matches it delivers (server.undelivered
 * reject or tempfail; with accept the end of DATA logs it). */
static void log_undelivered_rcpt(struct session *s, const struct rule_set *rs, const char *rcpt,
                                 const char *reply)
{
    atomic_fetch_add(&rs->stats->recipients_undelivered, 1);
    char status[16];
    int code = reply_code(reply, status, sizeof status);
    struct log_field f[] = {
        LOG_STR("qid", s->msg->env.qid),
        LOG_STR("client", s->client.client_ip),
        LOG_STR("rcpt", rcpt),
        LOG_STR("result", "undelivered"),
        LOG_STR("policy", undelivered_policy_name(s->cfg->server.undelivered)),
        LOG_STR("reply", reply),
        LOG_INT("code", code),
        LOG_STR("status", status[0] ? status : NULL),
        LOG_STR("reason", rcpt_reject_reason_name(REJECT_UNDELIVERED)),
        LOG_STR("session", s->id),
    };
    log_fields(LOG_WARN, "recipient", f, sizeof f / sizeof f[0]);
}

static void cmd_rcpt(struct session *s, const struct smtp_cmd *c)
{
    struct message *m = s->msg;
    if ((long long)m->env.nrcpts >= s->cfg->server.max_recipients) {
        s->n_rcpt_rejected++;
        atomic_fetch_add(&smtp_stats.rcpt_rejected[REJECT_TOO_MANY], 1);
        const char *refusal = "452 4.5.3 Error: too many recipients";
        log_refusal(s, "rcpt_refused", "rcpt", c->path, refusal,
                    rcpt_reject_reason_name(REJECT_TOO_MANY));
        reply(s, "%s", refusal);
        return;
    }
    if (c->path_utf8 && !m->env.smtputf8) {
        s->n_rcpt_rejected++;
        atomic_fetch_add(&smtp_stats.rcpt_rejected[REJECT_SYNTAX], 1);
        reply_error(s, "553 5.6.7 SMTPUTF8 required for a non-ASCII recipient address");
        return;
    }
    enum rcpt_reject_reason reason;
    const struct server_cfg *sc = &s->cfg->server;
    const struct rule_set *rs = config_rule_set_for(s->cfg, s->listen_addr);
    char text[512];
    const char *refusal =
        rcpt_judge(&(struct rcpt_settings){sc->domains, sc->ndomains, sc->undelivered}, rs, c->path,
                   s->client.tls, &s->hits, &s->hits_cap, &reason, text, sizeof text);
    if (refusal) {
        s->n_rcpt_rejected++;
        atomic_fetch_add(&smtp_stats.rcpt_rejected[reason], 1);
        if (reason == REJECT_UNDELIVERED)
            log_undelivered_rcpt(s, rs, c->path, refusal); /* its own line, with the policy */
        else
            log_refusal(s, "rcpt_refused", "rcpt", c->path, refusal,
                        rcpt_reject_reason_name(reason));
        reply_error(s, refusal);
        return;
    }
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        if (strcasecmp(m->env.rcpts[i], c->path) == 0) {
            reply(s, "250 2.1.5 Ok (duplicate recipient)");
            return;
        }
    }
    envelope_add_rcpt_dsn(&m->env, c->path, c->notify, c->orcpt[0] ? c->orcpt : NULL);
    s->n_rcpt_ok++;
    enter_state(s, S_RCPT);
    reply(s, "250 2.1.5 Ok");
}

/* Postfix's smtpd_forbid_bare_newline, with its exclusions: on the final client address, under
 * the transaction's config (or the server's between transactions). */
static int bare_lf_normalized(struct session *s)
{
    const struct server_cfg *c = scfg(s);
    return c->bare_lf_normalize ||
           cidr_list_match(c->bare_newline_exclusions, c->nbare_newline_exclusions,
                           s->client.client_ip);
}

static void cmd_data(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    data_reader_init(&s->data, &s->msg->body, (size_t)s->cfg->server.max_message_size,
                     bare_lf_normalized(s));
    enter_state(s, S_DATA);
    arm_timer(s, s->cfg->server.data_timeout);
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* BDAT (RFC 3030): the command only announces the chunk; process_input reads its octets in
 * S_BDAT and finish_chunk replies. A refused chunk is still read, and discarded, so that no
 * message octet is ever taken as a command (§3: the server must consume them). */
static void start_chunk(struct session *s, const struct smtp_cmd *c, const char *refusal)
{
    s->chunk_prev = s->state;
    s->chunk_size = s->chunk_left = (size_t)c->size;
    s->chunk_last = c->last;
    s->chunk_refusal = refusal;
    s->chunk_too_big = 0;
    if (!refusal) {
        if (s->state == S_RCPT)
            data_reader_init_raw(&s->data, &s->msg->body, (size_t)s->cfg->server.max_message_size,
                                 bare_lf_normalized(s));
        if ((unsigned long long)s->data.received + (unsigned long long)c->size >
            (unsigned long long)s->cfg->server.max_message_size) {
            s->chunk_refusal = "552 5.3.4 Error: message exceeds the size limit";
            s->chunk_too_big = 1;
        }
    }
    enter_state(s, S_BDAT);
    arm_timer(s, scfg(s)->data_timeout);
}

/* The chunk's octets are all in: its reply, and for LAST the message's. */
static void finish_chunk(struct session *s)
{
    const char *refusal = s->chunk_refusal;
    s->chunk_refusal = NULL;
    if (s->chunk_too_big) {
        /* Over the size limit: the transaction fails; chunks already pipelined behind this one
         * get 503 and are discarded too (RFC 3030 §2). */
        atomic_fetch_add(&smtp_stats.messages_refused, 1);
        atomic_fetch_add(&smtp_stats.rcpt_rejected[REJECT_SIZE], s->msg->env.nrcpts);
        message_log(s->msg, s->client.client_ip, s->client.helo, refusal, NULL, NULL,
                    "message refused while reading BDAT");
        txn_reset(s);
        enter_state(s, idle_state(s));
        reply_error(s, refusal);
        return;
    }
    if (refusal) {
        enter_state(s, s->chunk_prev);
        reply_error(s, refusal);
        return;
    }
    if (!s->chunk_last) {
        enter_state(s, S_CHUNKS);
        reply(s, "250 2.0.0 %zu octets received", s->chunk_size);
        return;
    }
    data_reader_end(&s->data);
    finish_data(s);
}

static void cmd_rset(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    txn_reset(s);
    enter_state(s, idle_state(s));
    reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    reply(s, "221 2.0.0 Bye");
    close_when_flushed(s, "quit");
}

static void cmd_help(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY "
             "STARTTLS; see RFC 5321");
}

static void cmd_vrfy(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    reply(s, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    reply_error(s, "502 5.5.1 Error: EXPN is not supported");
}

static void cmd_unknown(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    reply_error(s, "500 5.5.2 Error: command not recognized");
}

static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_read(struct bufferevent *bev, void *arg);

static void start_tls(struct session *s)
{
    /* The TLS filter writes through the socket bufferevent beneath it, which from now on
     * needs libevent's own write handling. */
    s->direct = 0;
    bufferevent_enable(s->bev, EV_WRITE);
    SSL *ssl = SSL_new(server_tls(s->srv));
    struct bufferevent *tbev = bufferevent_openssl_filter_new(
        server_base(s->srv), s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!tbev) {
        SSL_free(ssl);
        atomic_fetch_add(&smtp_stats.tls_failures[TLS_FAIL_ERROR], 1);
        log_tls_failure(s, TLS_FAIL_ERROR, ERR_get_error());
        s->end_reason = "TLS setup failed";
        session_free(s);
        return;
    }
    s->bev = tbev;
    enter_state(s, S_HANDSHAKE);
    struct timeval wt = {.tv_sec = (time_t)scfg(s)->command_timeout};
    bufferevent_set_timeouts(tbev, NULL, &wt);
    bufferevent_setcb(tbev, on_read, on_write, on_event, s);
    bufferevent_setwatermark(tbev, EV_READ, 0, INPUT_HIGH_WATER);
    bufferevent_enable(tbev, EV_READ | EV_WRITE);
    /* The handshake must finish within the command timeout too. */
    arm_timer(s, scfg(s)->command_timeout);
}

static const char *check_starttls(const struct session *s)
{
    return server_tls(s->srv) ? NULL : "502 5.5.1 Error: command not implemented";
}

static void cmd_starttls(struct session *s, const struct smtp_cmd *c)
{
    (void)c;
    reply(s, "220 2.0.0 Ready to start TLS");
    /* CVE-2011-0411: anything the client pipelined after STARTTLS is plaintext injection. */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_disable(s->bev, EV_READ);
    enter_state(s, S_STARTTLS); /* on_write starts the handshake once the 220 is out */
}

/* Authorization was decided when the session began and survives XCLIENT's restart, so a proxy
 * can send XCLIENT again on the same connection. */
static const char *check_xclient(const struct session *s)
{
    return s->xclient_ok ? NULL : "550 5.7.0 Error: insufficient authorization";
}

/* XCLIENT (Postfix semantics): replace the client attributes, then start over as if the client
 * had just connected, with a fresh banner. */
static void cmd_xclient(struct session *s, const struct smtp_cmd *c)
{
    struct xclient_attrs a;
    const char *err;
    if (xclient_parse(c->arg, &a, &err) < 0) {
        reply_error(s, err);
        return;
    }
    if (a.addr_set)
        snprintf(s->client.client_ip, sizeof s->client.client_ip, "%s",
                 a.addr_set == 1 ? a.addr : "unknown");
    if (a.port_set)
        s->client.client_port = a.port_set == 1 ? a.port : 0;
    if (a.name_set) {
        free(s->client.client_rdns);
        s->client.client_rdns = a.name_set == 1 ? xstrdup(a.name) : NULL;
    }
    txn_reset(s);
    free(s->client.helo);
    s->client.helo = a.helo_set == 1 ? xstrdup(a.helo) : NULL;
    s->client.esmtp = a.proto_set == 1 ? a.esmtp : 0;
    s->errors = 0;
    enter_state(s, idle_state(s));
    char text[512];
    snprintf(text, sizeof text, "XCLIENT from %s: client is now %s:%d%s%s", s->peer_ip,
             s->client.client_ip, s->client.client_port, s->client.client_rdns ? " name " : "",
             s->client.client_rdns ? s->client.client_rdns : "");
    log_client_change(s, text);
    greet(s);
}

#define NEED_HELO "503 5.5.1 Error: send HELO/EHLO first"
#define NEED_MAIL "503 5.5.1 Error: need MAIL command"
#define NESTED_MAIL "503 5.5.1 Error: nested MAIL command"
#define IN_TRANSACTION "503 5.5.1 Error: MAIL transaction in progress"
#define AFTER_BDAT "503 5.5.1 Error: BDAT transaction in progress (send BDAT ... LAST or RSET)"

struct smtp_command {
    const char *name;
    /* Allowed in every command state (S_GREETED..S_RCPT) but those listed here, which get
     * the reply given. */
    const char *refused[S_STATES];
    int before_tls; /* only before STARTTLS: once TLS is active, 554 */
    /* Whether this client is offered the command at all: NULL, or the refusal. Asked first. */
    const char *(*check)(const struct session *s);
    void (*proceed)(struct session *s, const struct smtp_cmd *c);
};

/* In the order dispatch asks: check, TLS, state, then proceed. Every refusal counts as a
 * client error (max_errors). */
static const struct smtp_command commands[] = {
    [CMD_UNKNOWN] = {"unknown", .proceed = cmd_unknown},
    [CMD_HELO] = {"HELO", .proceed = cmd_helo},
    [CMD_EHLO] = {"EHLO", .proceed = cmd_helo},
    [CMD_MAIL] = {"MAIL",
                  .refused = {[S_GREETED] = NEED_HELO,
                              [S_MAIL] = NESTED_MAIL,
                              [S_RCPT] = NESTED_MAIL,
                              [S_CHUNKS] = NESTED_MAIL},
                  .proceed = cmd_mail},
    [CMD_RCPT] =
        {"RCPT",
         .refused = {[S_GREETED] = NEED_MAIL, [S_HELO] = NEED_MAIL, [S_CHUNKS] = AFTER_BDAT},
         .proceed = cmd_rcpt},
    [CMD_DATA] = {"DATA",
                  .refused = {[S_GREETED] = NEED_MAIL,
                              [S_HELO] = NEED_MAIL,
                              [S_MAIL] = "554 5.5.1 Error: no valid recipients",
                              [S_CHUNKS] = AFTER_BDAT},
                  .proceed = cmd_data},
    /* Refusals here are the chunk's reply after its octets (start_chunk). */
    [CMD_BDAT] = {"BDAT",
                  .refused = {[S_GREETED] = NEED_MAIL,
                              [S_HELO] = NEED_MAIL,
                              [S_MAIL] = "554 5.5.1 Error: no valid recipients"},
                  .proceed = NULL},
    [CMD_RSET] = {"RSET", .proceed = cmd_rset},
    [CMD_NOOP] = {"NOOP", .proceed = cmd_noop},
    [CMD_QUIT] = {"QUIT", .proceed = cmd_quit},
    [CMD_HELP] = {"HELP", .proceed = cmd_help},
    [CMD_VRFY] = {"VRFY", .proceed = cmd_vrfy},
    [CMD_EXPN] = {"EXPN", .proceed = cmd_expn},
    [CMD_STARTTLS] = {"STARTTLS", .before_tls = 1, .check = check_starttls,
                      .proceed = cmd_starttls},
    [CMD_XCLIENT] =
        {"XCLIENT",
         .refused =
             {[S_MAIL] = IN_TRANSACTION, [S_RCPT] = IN_TRANSACTION, [S_CHUNKS] = IN_TRANSACTION},
         .check = check_xclient, .proceed = cmd_xclient},
};

static void dispatch(struct session *s, char *line, size_t len)
{
    struct smtp_cmd c;
    const char *err;
    if (smtp_cmd_parse(line, len, &c, &err) < 0) {
        if (c.verb == CMD_RCPT) {
            atomic_fetch_add(&smtp_stats.rcpt_rejected[REJECT_SYNTAX], 1);
            log_refusal(s, "rcpt_refused", "rcpt", NULL, err,
                        rcpt_reject_reason_name(REJECT_SYNTAX));
        } else if (c.verb == CMD_MAIL) {
            atomic_fetch_add(&smtp_stats.mail_rejected[MAIL_REJECT_SYNTAX], 1);
            log_refusal(s, "mail_refused", "from", NULL, err,
                        mail_reject_reason_name(MAIL_REJECT_SYNTAX));
        }
        reply_error(s, err);
        return;
    }
    if (c.verb == CMD_BDAT) {
        if (c.size > server_config(s->srv)->server.max_message_size) {
            /* Nothing is read: a client announcing more than SIZE allows is not followed. */
            reply_error(s, "501 5.5.4 Error: BDAT chunk larger than the message size limit");
            return;
        }
        const char *refusal = commands[CMD_BDAT].refused[s->state];
        if (refusal)
            log_msg_with(LOG_DEBUG, "session", s->id, "session %s: BDAT refused in state %s",
                         s->client.client_ip, state_names[s->state]);
        start_chunk(s, &c, refusal);
        return;
    }
    const struct smtp_command *cmd = &commands[CMD_UNKNOWN];
    if ((size_t)c.verb < sizeof commands / sizeof commands[0] && commands[c.verb].proceed)
        cmd = &commands[c.verb];
    const char *refusal = cmd->check ? cmd->check(s) : NULL;
    if (!refusal && cmd->before_tls && s->client.tls)
        refusal = "554 5.5.1 Error: TLS already active";
    if (!refusal)
        refusal = cmd->refused[s->state];
    if (refusal) {
        /* Out of sequence: not counted by the metrics, but a refused MAIL or RCPT is logged. */
        if (c.verb == CMD_MAIL)
            log_refusal(s, "mail_refused", "from", c.path, refusal, "bad_sequence");
        else if (c.verb == CMD_RCPT)
            log_refusal(s, "rcpt_refused", "rcpt", c.path, refusal, "bad_sequence");
        log_msg_with(LOG_DEBUG, "session", s->id, "session %s: %s refused in state %s",
                     s->client.client_ip, cmd->name, state_names[s->state]);
        reply_error(s, refusal);
        return;
    }
    cmd->proceed(s, &c);
}

/* --- input ------------------------------------------------------------------------------- */

/* Feeds buffered input to the DATA reader; returns 1 when the end of data was reached. */
static int feed_data(struct session *s, struct evbuffer *in)
{
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        int done;
        size_t used = data_reader_feed(&s->data, v.iov_base, v.iov_len, &done);
        evbuffer_drain(in, used);
        if (done)
            return 1;
    }
    return 0;
}

/* Feeds buffered input to the current BDAT chunk (or drops it when refused); returns 1 when
 * all its octets are in. */
static int feed_chunk(struct session *s, struct evbuffer *in)
{
    while (s->chunk_left > 0 && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t n = v.iov_len < s->chunk_left ? v.iov_len : s->chunk_left;
        if (!s->chunk_refusal) {
            int done;
            data_reader_feed(&s->data, v.iov_base, n, &done); /* raw: never done */
        } else {
            atomic_fetch_add(&smtp_stats.bytes_received, n); /* finish_data counts the rest */
        }
        evbuffer_drain(in, n);
        s->chunk_left -= n;
    }
    return s->chunk_left == 0;
}

/* Takes one command line from in. Returns 1 with the line in buf, 0 when incomplete, -1 when
 * the session must close (bare LF/CR: the smuggling defence applies to commands too). */
static int take_line(struct session *s, struct evbuffer *in, char *buf, size_t *len)
{
    struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
    if (lf.pos < 0) {
        size_t have = evbuffer_get_length(in);
        if (have > SMTP_CMD_LINE_MAX) {
            evbuffer_drain(in, have); /* keep discarding until the line ends */
            s->discarding = 1;
        }
        return 0;
    }
    size_t n = (size_t)lf.pos + 1;
    if (s->discarding || n > SMTP_CMD_LINE_MAX) {
        evbuffer_drain(in, n);
        s->discarding = 0;
        reply_error(s, "500 5.5.2 Error: line too long (at most 512 octets with CRLF)");
        return 2;
    }
    evbuffer_remove(in, buf, n);
    size_t end = n - 1; /* where the line ending starts */
    if (n >= 2 && buf[n - 2] == '\r')
        end = n - 2;
    else if (!bare_lf_normalized(s)) {
        reply(s, "%lld 5.5.2 Error: bare <LF> received", scfg(s)->bare_newline_reject_code);
        return -1;
    }
    if (memchr(buf, '\r', end)) {
        reply(s, "%lld 5.5.2 Error: bare <CR> received", scfg(s)->bare_newline_reject_code);
        return -1;
    }
    *len = end;
    buf[*len] = '\0';
    return 1;
}

static void process_input(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    struct evbuffer *out = bufferevent_get_output(s->bev);
    while (in_commands(s) || s->state == S_DATA || s->state == S_BDAT) {
        if (evbuffer_get_length(out) > OUTPUT_HIGH_WATER) {
            bufferevent_disable(s->bev, EV_READ); /* on_write resumes */
            return;
        }
        if (s->state == S_DATA) {
            if (!feed_data(s, in))
                return;
            /* finish_data enters the next state: busy, or back to commands. */
            arm_timer(s, scfg(s)->command_timeout);
            finish_data(s);
            continue;
        }
        if (s->state == S_BDAT) {
            if (!feed_chunk(s, in))
                return;
            arm_timer(s, scfg(s)->command_timeout);
            finish_chunk(s);
            continue;
        }
        if (s->stop_after_txn && !s->msg) {
            /* Shutting down and the transaction is over (delivered, refused or reset). */
            reply(s, "421 4.3.2 %s Service shutting down", server_config(s->srv)->server.hostname);
            close_when_flushed(s, "shutdown");
            return;
        }
        char line[SMTP_CMD_LINE_MAX + 1];
        size_t len;
        int rc = take_line(s, in, line, &len);
        if (rc == 0)
            return;
        if (rc < 0) {
            txn_reset(s);
            close_when_flushed(s, "bare CR or LF in command");
            return;
        }
        if (rc == 2)
            continue;
        arm_timer(s, scfg(s)->command_timeout);
        dispatch(s, line, len);
    }
    if (s->state == S_CLOSING)
        close_when_flushed(s, NULL);
}

/* --- bufferevent callbacks ---------------------------------------------------------------- */

/* Client known (the peer, or what the PROXY header carried, not the balancer): admission, then
 * XCLIENT authorization and the banner. A refusal is the only line the client gets. */
static void begin_smtp(struct session *s)
{
    char refusal[512];
    const char *why;
    if (server_admit(s->srv, s->conn, s->id, s->client.client_ip, s->proxied ? s->peer_ip : NULL,
                     refusal, sizeof refusal, &why) < 0) {
        reply(s, "%s", refusal);
        close_when_flushed(s, why);
        return;
    }
    const struct server_cfg *sc = &server_config(s->srv)->server;
    s->xclient_ok = cidr_list_match(sc->xclient, sc->nxclient, s->client.client_ip);
    enter_state(s, S_GREETED);
    greet(s);
    arm_timer(s, sc->command_timeout);
}

/* S_PROXY input: the header, then SMTP. Bytes after the header stay in the buffer and are
 * read as commands once the banner is queued (a pipelining client may send EHLO at once). */
static void proxy_input(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t have = evbuffer_get_length(in);
    if (have == 0)
        return;
    size_t n = have < PROXY_HEADER_MAX ? have : PROXY_HEADER_MAX;
    const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)n);
    struct proxy_header h;
    const char *why = "malformed PROXY protocol header";
    enum proxy_status st = proxy_parse(p, n, &h, &why);
    if (st == PROXY_NEED_MORE && n < PROXY_HEADER_MAX)
        return;
    if (st != PROXY_DONE) {
        proxy_refuse(s, why);
        return;
    }
    evbuffer_drain(in, h.consumed);
    if (!h.local) {
        snprintf(s->client.client_ip, sizeof s->client.client_ip, "%s", h.src_ip);
        s->client.client_port = h.src_port;
    }
    char text[512];
    snprintf(text, sizeof text, "PROXY v%d from %s on %s: client %s:%d%s", h.version, s->peer_ip,
             s->listen_addr, s->client.client_ip, s->client.client_port,
             h.local ? " (LOCAL: the peer itself)" : "");
    log_client_change(s, text);
    begin_smtp(s);
    if (in_commands(s))
        process_input(s);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    if (s->state == S_PROXY)
        proxy_input(s);
    else
        process_input(s);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;
    if (s->direct)
        bufferevent_disable(bev, EV_WRITE); /* drained: back to on_flush */
    if (s->state == S_CLOSING) {
        free_when_flushed(s);
    } else if (s->state == S_STARTTLS) {
        start_tls(s);
    } else if (in_commands(s) || s->state == S_DATA || s->state == S_BDAT) {
        bufferevent_enable(s->bev, EV_READ);
        process_input(s);
    }
}

/* Why the handshake ended: the TLS filter reports a peer that closed mid-handshake as an
 * error without a TLS reason (or "unexpected eof"), a protocol failure with one. */
static enum tls_failure handshake_failure(unsigned long e, short what)
{
    if (what & BEV_EVENT_TIMEOUT)
        return TLS_FAIL_TIMEOUT;
    if ((what & BEV_EVENT_EOF) || e == 0)
        return TLS_FAIL_CLOSED;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
    if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return TLS_FAIL_CLOSED;
#endif
    return TLS_FAIL_ERROR;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* TLS handshake done: the session starts over (RFC 3207 §4.2). */
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        s->client.tls = 1;
        snprintf(s->client.tls_version, sizeof s->client.tls_version, "%s", SSL_get_version(ssl));
        smtp_stats_tls_handshake(s->client.tls_version);
        snprintf(s->client.tls_cipher, sizeof s->client.tls_cipher, "%s", SSL_get_cipher_name(ssl));
        struct log_field f[] = {
            LOG_STR("session", s->id),
            LOG_STR("client", s->client.client_ip),
            LOG_STR("result", "ok"),
            LOG_STR("version", s->client.tls_version),
            LOG_STR("cipher", s->client.tls_cipher),
        };
        log_fields(LOG_INFO, "tls", f, sizeof f / sizeof f[0]);
        free(s->client.helo);
        s->client.helo = NULL;
        s->client.esmtp = 0;
        txn_reset(s);
        enter_state(s, S_GREETED);
        arm_timer(s, scfg(s)->command_timeout);
        process_input(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (s->state == S_HANDSHAKE) {
            unsigned long e = bufferevent_get_openssl_error(bev);
            enum tls_failure why = handshake_failure(e, what);
            atomic_fetch_add(&smtp_stats.tls_failures[why], 1);
            log_tls_failure(s, why, e);
        }
        if (!s->end_reason)
            s->end_reason = what & BEV_EVENT_EOF       ? "disconnect"
                            : what & BEV_EVENT_TIMEOUT ? "write timeout"
                                                       : "connection error";
        if ((s->state == S_DATA || s->state == S_BDAT || s->state == S_CHUNKS) && s->msg)
            message_log(s->msg, s->client.client_ip, s->client.helo, "not accepted", NULL, NULL,
                        s->state == S_DATA ? "client went away during DATA"
                                           : "client went away during BDAT");
        if (s->state == S_PROXY) {
            proxy_refuse(s, evbuffer_get_length(bufferevent_get_input(bev))
                                ? "connection closed within the PROXY protocol header"
                                : "connection closed before a PROXY protocol header");
            return;
        }
        session_free(s);
    }
}

/* --- lifecycle ---------------------------------------------------------------------------- */

void session_start(struct server *srv, evutil_socket_t fd, const struct sockaddr *peer,
                   const char *listen_address, int proxy)
{
    struct session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->started = time(NULL);
    envelope_init(&s->client);
    sockaddr_ip(peer, s->client.client_ip, sizeof s->client.client_ip, &s->client.client_port);
    snprintf(s->peer_ip, sizeof s->peer_ip, "%s", s->client.client_ip);
    s->proxied = proxy;
    snprintf(s->listen_addr, sizeof s->listen_addr, "%s", listen_address);
    make_session_id(s->id, sizeof s->id);
    struct log_field f[] = {
        LOG_STR("session", s->id),
        LOG_STR("client", s->client.client_ip),
        LOG_INT("port", s->client.client_port),
        LOG_STR("listener", s->listen_addr),
        LOG_BOOL("proxy_protocol", proxy),
    };
    log_fields(LOG_INFO, "connect", f, sizeof f / sizeof f[0]);
    struct event_base *base = server_base(srv);
    s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    s->timer = evtimer_new(base, on_timeout, s);
    s->flush = event_new(base, -1, 0, on_flush, s);
    s->direct = 1;
    bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
    /* Bound what a client can make us buffer while a message is being judged (S_BUSY). */
    bufferevent_setwatermark(s->bev, EV_READ, 0, INPUT_HIGH_WATER);
    const struct server_cfg *sc = &server_config(srv)->server;
    struct timeval wt = {.tv_sec = (time_t)sc->command_timeout};
    bufferevent_set_timeouts(s->bev, NULL, &wt);
    bufferevent_enable(s->bev, EV_READ);
    bufferevent_disable(s->bev, EV_WRITE); /* on by default; on_flush writes instead */
    s->conn = server_conn_add(srv, s);
    if (proxy) {
        enter_state(s, S_PROXY);
        arm_timer(s, sc->command_timeout);
    } else {
        begin_smtp(s);
    }
}

static void session_free(struct session *s)
{
    if (s->job_pending) {
        /* The worker still holds the message; finish when it reports back. */
        s->dead = 1;
        if (s->bev) {
            bufferevent_free(s->bev);
            s->bev = NULL;
        }
        evtimer_del(s->timer);
        event_del(s->flush);
        return;
    }
    log_session(s);
    if (s->bev)
        bufferevent_free(s->bev);
    event_free(s->timer);
    event_free(s->flush);
    txn_reset(s);
    envelope_free(&s->client);
    free(s->hits);
    server_conn_gone(s->srv, s->conn);
    free(s);
}

void session_shutdown(struct session *s)
{
    if (s->dead || s->state == S_CLOSING)
        return;
    if (s->state == S_BUSY || s->state == S_DATA || s->state == S_BDAT || s->msg) {
        s->stop_after_txn = 1;
        return;
    }
    if (s->state == S_STARTTLS || s->state == S_HANDSHAKE || s->state == S_PROXY) {
        s->end_reason = "shutdown";
        session_free(s);
        return;
    }
    reply(s, "421 4.3.2 %s Service shutting down", server_config(s->srv)->server.hostname);
    close_when_flushed(s, "shutdown");
}

void session_abort(struct session *s)
{
    if (s->dead)
        return;
    s->end_reason = "shutdown";
    session_free(s);
}
