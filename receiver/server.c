/* Listeners, connection admission and limits, the live sessions, signals and config reload. */
#include "receiver/server.h"
#include "config/config.h"
#include "core/cidr.h"
#include "delivery/smtp_client.h"
#include "core/log.h"
#include "core/sd_notify.h"
#include "core/sockaddr.h"
#include "core/xalloc.h"
#include "receiver/metrics_http.h"
#include "receiver/session.h"
#include "receiver/tls.h"
#include "core/workers.h"
#include "receiver/smtp_stats.h"
#include "reports/dmarc_timer.h"
#include "pipeline/retry.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Sessions still mid-transaction get this long to finish after SIGTERM. */
#define SHUTDOWN_GRACE_SECONDS 30

struct ip_slot {
    char ip[64];
    unsigned count;
    struct ip_slot *next;
};

#define IP_BUCKETS 4096

struct server_conn {
    struct session *session;
    char counted_ip[64]; /* per-IP accounting key; "" until admitted */
    struct server_conn *next, *prev;
};

struct server {
    struct event_base *base;
    struct config *cfg; /* in force; sessions pin their own reference per transaction */
    SSL_CTX *tls;       /* NULL when STARTTLS is not configured */
    struct listener *listeners;
    size_t nlisteners;
    struct worker_pool *pool;
    struct server_conn *conns; /* every live session, for shutdown */
    size_t nsessions;
    struct ip_slot *per_ip[IP_BUCKETS];
    int stopping;
    struct event *signals[4];
    struct event *grace;
    struct evhttp *metrics;
    struct retry *retry;           /* post-acceptance jobs */
    struct dmarc_timer *dmarc;     /* sends DMARC aggregate reports (dmarc_reports { send }) */
    struct server_reloads reloads; /* event loop only */
};

struct listener {
    struct server *srv;
    struct evconnlistener *evl;
    char *address;
    /* Fixed at bind time like the address, so that a reload which renames or drops the entry
     * never turns a PROXY listener into a plain one. The trusted list follows reloads. */
    int proxy;
    struct cidr *trusted;
    size_t ntrusted;
};

/* Copies the trusted list of listen entry lc (the listener's own copy, freed with it). */
static void listener_set_trusted(struct listener *l, const struct listen_cfg *lc)
{
    free(l->trusted);
    l->trusted = NULL;
    l->ntrusted = lc->ntrusted;
    if (lc->ntrusted) {
        l->trusted = xcalloc(lc->ntrusted, sizeof *l->trusted);
        memcpy(l->trusted, lc->trusted, lc->ntrusted * sizeof *l->trusted);
    }
}

/* --- per-IP accounting ------------------------------------------------------------------- */

static unsigned ip_hash(const char *ip)
{
    unsigned h = 5381;
    for (; *ip; ip++)
        h = h * 33 + (unsigned char)*ip;
    return h % IP_BUCKETS;
}

static struct ip_slot **ip_find(struct server *srv, const char *ip)
{
    struct ip_slot **p = &srv->per_ip[ip_hash(ip)];
    while (*p && strcmp((*p)->ip, ip) != 0)
        p = &(*p)->next;
    return p;
}

/* Counts one more connection from ip; -1 (nothing counted) when that exceeds
 * max_connections_per_ip. */
static int ip_acquire(struct server *srv, const char *ip)
{
    struct ip_slot **p = ip_find(srv, ip);
    if (*p && (long long)(*p)->count >= srv->cfg->server.max_connections_per_ip)
        return -1;
    if (!*p) {
        *p = xcalloc(1, sizeof **p);
        snprintf((*p)->ip, sizeof(*p)->ip, "%s", ip);
    }
    (*p)->count++;
    return 0;
}

/* A 421 instead of the banner, without starting a session: the server closes on its own, so
 * the reply names it (RFC 5321 §3.8, §4.2: "421 <domain> Service not available"). */
static void refuse_busy(evutil_socket_t fd, const struct server_cfg *sc)
{
    char text[512];
    snprintf(text, sizeof text, "421 4.7.0 %s Error: too many connections, try again later\r\n",
             sc->hostname);
    ssize_t rc = write(fd, text, strlen(text));
    (void)rc;
    evutil_closesocket(fd);
}

/* --- sessions and admission ------------------------------------------------------------- */

struct server_conn *server_conn_add(struct server *srv, struct session *s)
{
    struct server_conn *c = xcalloc(1, sizeof *c);
    c->session = s;
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    srv->nsessions++;
    return c;
}

void server_conn_gone(struct server *srv, struct server_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nsessions--;
    struct ip_slot **p = ip_find(srv, c->counted_ip);
    if (c->counted_ip[0] && *p && --(*p)->count == 0) {
        struct ip_slot *dead = *p;
        *p = dead->next;
        free(dead);
    }
    free(c);
    if (srv->stopping && srv->nsessions == 0)
        event_base_loopexit(srv->base, NULL);
}

int server_admit(struct server *srv, struct server_conn *c, const char *sid, const char *ip,
                 const char *via, char *reply, size_t replylen, const char **why)
{
    const char *filter = config_receipt_filter_blocks(srv->cfg, ip);
    if (filter) {
        /* The refusal is the banner: one line, no SMTP dialogue (SES receipt filters). */
        atomic_fetch_add(&smtp_stats.connections_refused, 1);
        atomic_fetch_add(&smtp_stats.rcpt_rejected[REJECT_RECEIPT_FILTER], 1);
        struct log_kv kv[] = {
            {"client", ip}, {"via", via}, {"receipt_filter", filter}, {"session", sid}};
        log_event(LOG_INFO, "refused", kv, sizeof kv / sizeof kv[0]);
        snprintf(reply, replylen, "554 5.7.1 Access denied by policy");
        *why = "receipt filter";
        return -1;
    }
    if (ip_acquire(srv, ip) < 0) {
        atomic_fetch_add(&smtp_stats.connections_refused, 1);
        log_msg_with(LOG_WARN, "session", sid,
                     "refused %s%s%s%s: too many connections from this address", ip,
                     via ? " (via " : "", via ? via : "", via ? ")" : "");
        /* The server closes on its own, so the reply names it (RFC 5321 §3.8). */
        snprintf(reply, replylen,
                 "421 4.7.0 %s Error: too many connections from your address, try again later",
                 srv->cfg->server.hostname);
        *why = "too many connections from this address";
        return -1;
    }
    snprintf(c->counted_ip, sizeof c->counted_ip, "%s", ip);
    return 0;
}

void server_proxy_refused(const char *sid, const char *peer_ip, const char *listen_addr,
                          const char *why)
{
    unsigned long long n = atomic_fetch_add(&smtp_stats.proxy_refused, 1) + 1;
    log_msg_with(LOG_WARN, "session", sid,
                 "closed %s on %s without banner: %s (%llu PROXY refusals)", peer_ip, listen_addr,
                 why, n);
}

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct listener *l = arg;
    struct server *srv = l->srv;
    const struct server_cfg *sc = &srv->cfg->server;
    char ip[64];
    int port;
    sockaddr_ip(sa, ip, sizeof ip, &port);
    atomic_fetch_add(&smtp_stats.connections, 1);
    if ((long long)srv->nsessions >= sc->max_connections) {
        atomic_fetch_add(&smtp_stats.connections_refused, 1);
        log_msg(LOG_WARN, "refused %s: too many connections (%zu)", ip, srv->nsessions);
        refuse_busy(fd, sc);
        return;
    }
    /* Nothing from an untrusted source is read: not even a refusal goes out, since the peer
     * is not speaking SMTP to us. */
    if (l->proxy && !cidr_list_match(l->trusted, l->ntrusted, ip)) {
        server_proxy_refused(NULL, ip, l->address, "not a trusted PROXY protocol source");
        evutil_closesocket(fd);
        return;
    }
    /* The session asks server_admit once it knows the client: at once, or after the PROXY
     * header. */
    evutil_make_socket_nonblocking(fd);
    session_start(srv, fd, sa, l->address, l->proxy);
}

static void resume_accept(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(arg);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    log_msg(LOG_ERR, "accept: %s", evutil_socket_error_to_string(err));
    /* EMFILE and friends: back off briefly instead of spinning. */
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        evconnlistener_disable(evl);
        struct timeval tv = {1, 0};
        event_base_once(evconnlistener_get_base(evl), -1, EV_TIMEOUT, resume_accept, evl, &tv);
    }
}

static int bind_listeners(struct server *srv, char *err, size_t errlen)
{
    const struct server_cfg *sc = &srv->cfg->server;
    srv->listeners = xcalloc(sc->nlisten, sizeof *srv->listeners);
    for (size_t i = 0; i < sc->nlisten; i++) {
        struct sockaddr_storage ss;
        socklen_t sl;
        sockaddr_parse(sc->listen[i].address, &ss, &sl);
        struct listener *l = &srv->listeners[srv->nlisteners];
        l->srv = srv;
        l->evl = evconnlistener_new_bind(srv->base, on_accept, l,
                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                             LEV_OPT_CLOSE_ON_EXEC,
                                         (int)sc->listen_backlog, (struct sockaddr *)&ss, (int)sl);
        if (!l->evl) {
            snprintf(err, errlen, "%s:%d: cannot listen on %s: %s", srv->cfg->path,
                     sc->listen[i].line, sc->listen[i].address, strerror(errno));
            return -1;
        }
        evconnlistener_set_error_cb(l->evl, on_accept_error);
        l->address = xstrdup(sc->listen[i].address);
        l->proxy = sc->listen[i].proxy_protocol;
        listener_set_trusted(l, &sc->listen[i]);
        srv->nlisteners++;
        log_msg(LOG_INFO, "listening on %s", l->address);
    }
    return 0;
}

/* --- signals ----------------------------------------------------------------------------- */

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    struct server *srv = arg;
    log_msg(LOG_WARN, "shutdown grace period over: closing %zu sessions", srv->nsessions);
    for (struct server_conn *c = srv->conns, *n; c; c = n) {
        n = c->next;
        session_abort(c->session);
    }
}

static void begin_shutdown(struct server *srv, int sig)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    sd_notify_send("STOPPING=1");
    log_msg(LOG_INFO, "signal %d: finishing %zu sessions, then exiting", sig, srv->nsessions);
    for (size_t i = 0; i < srv->nlisteners; i++) {
        evconnlistener_free(srv->listeners[i].evl);
        srv->listeners[i].evl = NULL;
    }
    for (struct server_conn *c = srv->conns, *n; c; c = n) {
        n = c->next;
        session_shutdown(c->session);
    }
    if (srv->nsessions == 0) {
        event_base_loopexit(srv->base, NULL);
        return;
    }
    struct timeval tv = {SHUTDOWN_GRACE_SECONDS, 0};
    srv->grace = evtimer_new(srv->base, on_grace_over, srv);
    evtimer_add(srv->grace, &tv);
}

static void reload_config(struct server *srv);

/* SIGHUP: load the new config beside the old; swap only when it (and its TLS) is valid. */
static void reload(struct server *srv)
{
    sd_notify_send("RELOADING=1");
    reload_config(srv);
    sd_notify_send("READY=1");
}

static void reload_config(struct server *srv)
{
    char err[1024];
    struct config *next = config_load(srv->cfg->path, err, sizeof err);
    if (!next) {
        srv->reloads.failed++;
        srv->reloads.last_ok = 0;
        log_msg(LOG_ERR, "reload failed, keeping the running config: %s", err);
        return;
    }
    SSL_CTX *tls = NULL;
    if (next->server.tls_cert) {
        tls = tls_server_ctx(next->server.tls_cert, next->server.tls_key, err, sizeof err);
        if (!tls) {
            log_msg(LOG_ERR, "reload failed, keeping the running config: %s:%d: %s", next->path,
                    next->server.line, err);
            srv->reloads.failed++;
            srv->reloads.last_ok = 0;
            config_release(next);
            return;
        }
    }
    const struct server_cfg *a = &srv->cfg->server, *b = &next->server;
    int same_listen = a->nlisten == b->nlisten;
    for (size_t i = 0; same_listen && i < a->nlisten; i++)
        same_listen = strcmp(a->listen[i].address, b->listen[i].address) == 0;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        struct listener *l = &srv->listeners[i];
        const struct listen_cfg *lc = config_listen_for(next, l->address);
        if (!lc)
            continue;
        if (lc->proxy_protocol != (l->proxy != 0))
            log_msg(LOG_WARN, "reload: proxy_protocol of %s changed; takes effect on restart",
                    l->address);
        else if (l->proxy)
            listener_set_trusted(l, lc);
    }
    if (!same_listen)
        log_msg(LOG_WARN, "reload: listen addresses changed; they take effect on restart");
    if (b->workers != a->workers)
        log_msg(LOG_WARN, "reload: workers changed; takes effect on restart");
    if (b->listen_backlog != a->listen_backlog)
        log_msg(LOG_WARN, "reload: listen_backlog changed; takes effect on restart");
    next->generation = srv->cfg->generation + 1;
    /* Sessions hold their own references; the old config dies with its last transaction. */
    config_release(srv->cfg);
    srv->cfg = next;
    if (srv->tls)
        SSL_CTX_free(srv->tls);
    srv->tls = tls;
    log_set_json(next->server.log_json);
    log_set_level((enum log_level)next->server.log_level);
    smtp_client_set_helo(next->server.hostname);
    srv->reloads.succeeded++;
    srv->reloads.last_ok = 1;
    srv->reloads.last_success = time(NULL);
    log_msg(LOG_INFO, "config reloaded from %s (generation %u, %zu rule sets)", next->path,
            next->generation, next->nsets);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct server *srv = arg;
    if (sig == SIGHUP)
        reload(srv);
    else
        begin_shutdown(srv, (int)sig);
}

/* --- lifecycle --------------------------------------------------------------------------- */

struct server *server_new(struct config *cfg, char *err, size_t errlen)
{
    struct server *srv = xcalloc(1, sizeof *srv);
    srv->cfg = cfg;
    srv->reloads.last_ok = 1;
    srv->reloads.last_success = time(NULL); /* the config given was loaded just now */
    srv->base = event_base_new();
    if (!srv->base) {
        snprintf(err, errlen, "cannot create event base");
        server_free(srv);
        return NULL;
    }
    if (cfg->server.tls_cert) {
        char why[512];
        srv->tls = tls_server_ctx(cfg->server.tls_cert, cfg->server.tls_key, why, sizeof why);
        if (!srv->tls) {
            snprintf(err, errlen, "%s:%d: %s", cfg->path, cfg->server.line, why);
            server_free(srv);
            return NULL;
        }
    }
    if (bind_listeners(srv, err, errlen) < 0) {
        server_free(srv);
        return NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        srv->signals[i] = evsignal_new(srv->base, sigs[i], on_signal, srv);
        evsignal_add(srv->signals[i], NULL);
    }
    if (cfg->server.metrics) {
        char why[256];
        srv->metrics = metrics_http_start(srv, cfg->server.metrics, why, sizeof why);
        if (!srv->metrics) {
            snprintf(err, errlen, "%s:%d: %s", cfg->path, cfg->server.line, why);
            server_free(srv);
            return NULL;
        }
    }
    srv->pool = worker_pool_new(srv->base, (int)cfg->server.workers);
    srv->retry = retry_new(srv->base, srv->pool, &srv->cfg, err, errlen);
    if (!srv->retry) {
        server_free(srv);
        return NULL;
    }
    srv->dmarc = dmarc_timer_new(srv->base, srv->pool, &srv->cfg);
    return srv;
}

void server_run(struct server *srv)
{
    log_msg(LOG_INFO, "sluice %s ready: %s, %zu rule sets, %lld workers", SLUICE_VERSION,
            srv->cfg->server.hostname, srv->cfg->nsets, srv->cfg->server.workers);
    sd_notify_send("READY=1");
    event_base_dispatch(srv->base);
    log_msg(LOG_INFO, "stopped");
}

const struct server_reloads *server_reloads(const struct server *srv)
{
    return &srv->reloads;
}

struct event_base *server_base(const struct server *srv)
{
    return srv->base;
}

struct config *server_config(const struct server *srv)
{
    return srv->cfg;
}

SSL_CTX *server_tls(const struct server *srv)
{
    return srv->tls;
}

struct worker_pool *server_pool(const struct server *srv)
{
    return srv->pool;
}

struct retry *server_retry(const struct server *srv)
{
    return srv->retry;
}

size_t server_nsessions(const struct server *srv)
{
    return srv->nsessions;
}

void server_free(struct server *srv)
{
    if (!srv)
        return;
    worker_pool_free(srv->pool); /* finishes jobs in flight first */
    retry_free(srv->retry);      /* what is left stays in the spool */
    dmarc_timer_free(srv->dmarc);
    metrics_http_free(srv->metrics);
    while (srv->conns)
        session_abort(srv->conns->session);
    for (size_t i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].evl)
            evconnlistener_free(srv->listeners[i].evl);
        free(srv->listeners[i].address);
        free(srv->listeners[i].trusted);
    }
    free(srv->listeners);
    for (size_t i = 0; i < 4; i++)
        if (srv->signals[i])
            event_free(srv->signals[i]);
    if (srv->grace)
        event_free(srv->grace);
    for (size_t i = 0; i < IP_BUCKETS; i++) {
        while (srv->per_ip[i]) {
            struct ip_slot *n = srv->per_ip[i]->next;
            free(srv->per_ip[i]);
            srv->per_ip[i] = n;
        }
    }
    if (srv->tls)
        SSL_CTX_free(srv->tls);
    config_release(srv->cfg);
    if (srv->base)
        event_base_free(srv->base);
    free(srv);
}
