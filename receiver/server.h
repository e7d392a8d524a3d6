/* The SMTP server: listeners, connection admission and limits, the config in force, the live
 * sessions, signals (SIGTERM/SIGINT drain and exit, SIGHUP reload) and the worker pool. One
 * event loop, one thread for I/O. */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <time.h>

struct config;
struct event_base;
struct retry;
struct session;
struct worker_pool;

struct server;
/* A session's place in the server: its entry in the live list and the address it is counted
 * under for max_connections_per_ip. Owned by the server; valid until server_conn_gone. */
struct server_conn;

/* Binds every listener of cfg (the server takes over the reference). Returns NULL with the
 * reason in err when a listener cannot be bound or TLS cannot be set up. */
struct server *server_new(struct config *cfg, char *err, size_t errlen);
/* Serves until SIGTERM/SIGINT and every session has finished. */
void server_run(struct server *srv);
void server_free(struct server *srv);

/* --- for sessions and the metrics exporter ------------------------------------------------ */

struct event_base *server_base(const struct server *srv);
/* The config in force; the server's reference: config_retain() it to keep it past a reload. */
struct config *server_config(const struct server *srv);
/* The STARTTLS context of the config in force, NULL when STARTTLS is not configured. */
SSL_CTX *server_tls(const struct server *srv);
struct worker_pool *server_pool(const struct server *srv);
/* Post-acceptance jobs (deliveries to retry). */
struct retry *server_retry(const struct server *srv);
size_t server_nsessions(const struct server *srv);

/* SIGHUP reloads so far. The config given to server_new counts as the first success. */
struct server_reloads {
    unsigned long long succeeded, failed; /* reloads, not counting the start */
    int last_ok;                          /* the last attempt (or the start) succeeded */
    time_t last_success;                  /* when the config in force was loaded */
};
/* Read on the event loop (the metrics endpoint runs there). */
const struct server_reloads *server_reloads(const struct server *srv);

/* A session begins: it joins the live list (shutdown and reload reach it from there). */
struct server_conn *server_conn_add(struct server *srv, struct session *s);
/* The session is gone: leaves the list, uncounts its address, frees c. */
void server_conn_gone(struct server *srv, struct server_conn *c);

/* Admission, once the client address is final (the TCP peer, or what a PROXY header carried;
 * via is the peer then, else NULL): receipt filters, then max_connections_per_ip. Returns 0
 * and counts c under ip; or -1 with the reply to send before closing (no CRLF) in reply and
 * the session's end reason (a static string) in *why. Refusals are logged (with the session
 * id sid) and counted. */
int server_admit(struct server *srv, struct server_conn *c, const char *sid, const char *ip,
                 const char *via, char *reply, size_t replylen, const char **why);

/* A connection on a PROXY protocol listener closed unheard (untrusted source, bad or missing
 * header): logged with why (and the session id sid, NULL before a session) and counted. */
void server_proxy_refused(const char *sid, const char *peer_ip, const char *listen_addr,
                          const char *why);

#endif
