/* The SMTP server: listeners, connection limits, the config in force, signals (SIGTERM/SIGINT
 * drain and exit, SIGHUP reload) and the worker pool. One event loop, one thread for I/O. */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <openssl/ssl.h>
#include <stddef.h>

struct config;
struct event_base;
struct session;
struct worker_pool;
struct dmarc_timer;

struct ip_slot {
    char ip[64];
    unsigned count;
    struct ip_slot *next;
};

#define IP_BUCKETS 4096

struct server {
    struct event_base *base;
    struct config *cfg; /* in force; sessions pin their own reference per transaction */
    SSL_CTX *tls;       /* NULL when STARTTLS is not configured */
    struct listener *listeners;
    size_t nlisteners;
    struct worker_pool *pool;
    struct session *sessions; /* every live session, for shutdown */
    size_t nsessions;
    struct ip_slot *per_ip[IP_BUCKETS];
    int stopping;
    struct event *signals[4];
    struct event *grace;
    struct evhttp *metrics;
    struct retry *retry;         /* post-acceptance jobs */
    struct dmarc_timer *dmarc;   /* sends DMARC aggregate reports (dmarc_reports { send }) */
    unsigned long proxy_refused; /* connections closed unheard on PROXY protocol listeners */
};

/* Binds every listener of cfg (the server takes over the reference). Returns NULL with the
 * reason in err when a listener cannot be bound or TLS cannot be set up. */
struct server *server_new(struct config *cfg, char *err, size_t errlen);
/* Serves until SIGTERM/SIGINT and every session has finished. */
void server_run(struct server *srv);
void server_free(struct server *srv);

/* For sessions: per-IP accounting and the live list. ip is the address the session was counted
 * under, "" when it never was (a PROXY protocol session that ended before its header). */
void server_session_gone(struct server *srv, struct session *s, const char *ip);
/* Counts one more connection from ip; -1 (nothing counted) when that exceeds
 * max_connections_per_ip. PROXY protocol sessions call it once they know the client. */
int server_ip_acquire(struct server *srv, const char *ip);

#endif
