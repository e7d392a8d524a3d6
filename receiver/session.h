/* One SMTP session (RFC 5321 server side): a line-oriented state machine over a libevent
 * bufferevent, with STARTTLS, pipelining, DATA through the smtp_data reader, and message
 * judgement handed to the worker pool. */
#ifndef SLUICE_SESSION_H
#define SLUICE_SESSION_H

#include <event2/util.h>
#include <sys/socket.h>

struct server;
struct session;

/* Takes ownership of fd; the session joins the server's list and frees itself when it ends.
 * With proxy set, it first reads a PROXY protocol header (no banner before it). Once the client
 * address is known it asks server_admit, and sends the banner or the refusal. */
void session_start(struct server *srv, evutil_socket_t fd, const struct sockaddr *peer,
                   const char *listen_address, int proxy);
/* The server is stopping: close now if idle, else right after the current transaction. */
void session_shutdown(struct session *s);
/* Grace period over: close no matter what (a pending job still completes first). */
void session_abort(struct session *s);

#endif
