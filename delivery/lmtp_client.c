/* LMTP client over plain sockets with poll() timeouts, and the connection pool. */
#include "delivery/lmtp_client.h"
#include "core/buf.h"
#include "core/sockaddr.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 8         /* idle connections kept per target */
#define POOL_IDLE_MAX_S 30 /* older idle ones are closed: servers time idle clients out */
#define LINE_MAX_LEN 2048  /* RFC 5321 4.5.3.1.5 says 512; be generous, not unbounded */

struct conn {
    int fd;
    int pipelining;
    time_t idle_since;
    size_t ilen;
    char in[4096];
};

struct lmtp_pool {
    pthread_mutex_t lock;
    struct sockaddr_storage ss;
    socklen_t sslen;
    char target[160];
    char lhlo[256];
    struct conn *idle[POOL_MAX];
    size_t nidle;
};

/* Why a transaction stopped early. */
enum io_fail { IO_OK = 0, IO_CLOSED, IO_TIMEOUT, IO_GARBAGE, IO_ERROR };

struct lmtp_pool *lmtp_pool_new(const char *path, const char *host, const char *lhlo, char *err,
                                size_t errlen)
{
    struct lmtp_pool *p = xcalloc(1, sizeof *p);
    if (path) {
        struct sockaddr_un *un = (struct sockaddr_un *)&p->ss;
        if (strlen(path) >= sizeof un->sun_path) {
            snprintf(err, errlen, "socket path '%s' is too long", path);
            free(p);
            return NULL;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        p->sslen = (socklen_t)sizeof *un;
        snprintf(p->target, sizeof p->target, "unix:%s", path);
    } else {
        if (sockaddr_parse(host, &p->ss, &p->sslen) < 0) {
            snprintf(err, errlen, "address must be a numeric \"ip:port\", got \"%s\"", host);
            free(p);
            return NULL;
        }
        snprintf(p->target, sizeof p->target, "%s", host);
    }
    snprintf(p->lhlo, sizeof p->lhlo, "%s", lhlo);
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void conn_close(struct conn *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c);
}

void lmtp_pool_free(struct lmtp_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nidle; i++)
        conn_close(p->idle[i]);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

const char *lmtp_pool_target(const struct lmtp_pool *p)
{
    return p->target;
}

static struct conn *pool_take(struct lmtp_pool *p)
{
    time_t now = time(NULL);
    struct conn *c = NULL;
    pthread_mutex_lock(&p->lock);
    while (p->nidle > 0 && !c) {
        struct conn *q = p->idle[--p->nidle];
        if (now - q->idle_since <= POOL_IDLE_MAX_S)
            c = q;
        else
            conn_close(q);
    }
    pthread_mutex_unlock(&p->lock);
    return c;
}

static void pool_give(struct lmtp_pool *p, struct conn *c)
{
    c->idle_since = time(NULL);
    pthread_mutex_lock(&p->lock);
    if (p->nidle < POOL_MAX) {
        p->idle[p->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    conn_close(c);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events; IO_TIMEOUT after timeout_ms. */
static enum io_fail wait_fd(int fd, short events, long long timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return IO_TIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return IO_OK;
        if (n < 0 && errno != EINTR)
            return IO_ERROR;
    }
}

static struct conn *conn_open(struct lmtp_pool *p, long long timeout_ms, char *err, size_t errlen)
{
    int fd = socket(p->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "LMTP %s: socket: %s", p->target, strerror(errno));
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&p->ss, p->sslen) < 0) {
        int e = errno;
        if (e == EINPROGRESS) {
            socklen_t sl = sizeof e;
            if (wait_fd(fd, POLLOUT, timeout_ms) != IO_OK)
                e = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
                e = errno;
        }
        if (e) {
            snprintf(err, errlen, "LMTP %s: connect: %s", p->target, strerror(e));
            close(fd);
            return NULL;
        }
    }
    struct conn *c = xcalloc(1, sizeof *c);
    c->fd = fd;
    return c;
}

static enum io_fail write_all(struct conn *c, const char *data, size_t len, long long timeout_ms)
{
    while (len > 0) {
        /* MSG_NOSIGNAL: a server that went away must not kill sluice with SIGPIPE. */
        ssize_t w = send(c->fd, data, len, MSG_NOSIGNAL);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            enum io_fail f = wait_fd(c->fd, POLLOUT, timeout_ms);
            if (f != IO_OK)
                return f;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else {
            return errno == EPIPE || errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
        }
    }
    return IO_OK;
}

/* Reads one line (without CRLF) into line. */
static enum io_fail read_line(struct conn *c, char *line, size_t cap, long long timeout_ms)
{
    for (;;) {
        char *nl = memchr(c->in, '\n', c->ilen);
        if (nl) {
            size_t n = (size_t)(nl - c->in);
            size_t keep = n > 0 && c->in[n - 1] == '\r' ? n - 1 : n;
            if (keep >= cap)
                return IO_GARBAGE;
            memcpy(line, c->in, keep);
            line[keep] = '\0';
            c->ilen -= n + 1;
            memmove(c->in, nl + 1, c->ilen);
            return IO_OK;
        }
        if (c->ilen >= sizeof c->in || c->ilen >= cap)
            return IO_GARBAGE; /* a line longer than any reply has reason to be */
        ssize_t r = recv(c->fd, c->in + c->ilen, sizeof c->in - c->ilen, 0);
        if (r > 0) {
            c->ilen += (size_t)r;
        } else if (r == 0) {
            return IO_CLOSED;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            enum io_fail f = wait_fd(c->fd, POLLIN, timeout_ms);
            if (f != IO_OK)
                return f;
        } else if (errno != EINTR) {
            return errno == ECONNRESET ? IO_CLOSED : IO_ERROR;
        }
    }
}

/* Text fit for a log line or an SMTP reply: printable ASCII only. */
static void printable(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            *p = '?';
}

/* The reading state of one transaction: what went wrong, for the log. */
struct xact {
    struct lmtp_pool *p;
    struct conn *c;
    long long timeout_ms;
    char *err;
    size_t errlen;
    int sent_dot; /* the end of the message went out: the server may have delivered */
    int closing;  /* a 421 came: the server is going away */
};

static enum io_fail fail(struct xact *x, enum io_fail f, const char *after, const char *line)
{
    static const char *const why[] = {"", "connection closed by the server",
                                      "timed out waiting for the server", "garbage from the server",
                                      "I/O error"};
    char shown[80] = "";
    if (f == IO_GARBAGE && line) {
        snprintf(shown, sizeof shown, ": \"%.60s\"", line);
        printable(shown);
    }
    if (f == IO_ERROR)
        snprintf(shown, sizeof shown, ": %s", strerror(errno));
    snprintf(x->err, x->errlen, "LMTP %s: %s %s%s", x->p->target, why[f], after, shown);
    return f;
}

/* Reads one reply (all its lines) into r; with pipelining, ext collects the LHLO keywords. */
static enum io_fail read_reply(struct xact *x, const char *after, struct rcpt_reply *r,
                               int *pipelining)
{
    char line[LINE_MAX_LEN];
    for (int first = 1;; first = 0) {
        enum io_fail f = read_line(x->c, line, sizeof line, x->timeout_ms);
        if (f != IO_OK)
            return fail(x, f, after, f == IO_GARBAGE ? "(line too long)" : NULL);
        size_t n = strlen(line);
        int code = 0;
        if (n >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' && line[1] <= '9' &&
            line[2] >= '0' && line[2] <= '9' && (n == 3 || line[3] == ' ' || line[3] == '-'))
            code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (!code || (!first && code != r->code))
            return fail(x, IO_GARBAGE, after, line);
        if (first) {
            r->code = code;
            const char *text = n > 4 ? line + 4 : "";
            /* An SMTP reply needs an enhanced status (RFC 3463) when it is passed on. */
            int has_status = text[0] >= '2' && text[0] <= '5' && text[1] == '.';
            if (has_status)
                snprintf(r->text, sizeof r->text, "%d %.240s", code, text);
            else
                snprintf(r->text, sizeof r->text, "%d %d.0.0 %.230s", code, code / 100, text);
            printable(r->text);
        }
        if (pipelining && n >= 14 && strncasecmp(line + 4, "PIPELINING", 10) == 0 &&
            (line[14] == '\0' || line[14] == ' '))
            *pipelining = 1;
        if (code == 421)
            x->closing = 1;
        if (n == 3 || line[3] == ' ')
            return IO_OK;
    }
}

/* The message, dot-stuffed (RFC 5321 4.5.2), and the end-of-data line. */
static enum io_fail send_message(struct xact *x, const char *data, size_t len)
{
    size_t start = 0;
    enum io_fail f = IO_OK;
    for (size_t i = 0; i < len && f == IO_OK; i++) {
        if (data[i] == '.' && (i == 0 || data[i - 1] == '\n')) {
            f = write_all(x->c, data + start, i - start, x->timeout_ms);
            if (f == IO_OK)
                f = write_all(x->c, ".", 1, x->timeout_ms);
            start = i; /* the dot itself goes out with the rest of the line */
        }
    }
    if (f == IO_OK)
        f = write_all(x->c, data + start, len - start, x->timeout_ms);
    if (f == IO_OK && (len < 2 || data[len - 2] != '\r' || data[len - 1] != '\n'))
        f = write_all(x->c, "\r\n", 2, x->timeout_ms);
    if (f == IO_OK)
        f = write_all(x->c, ".\r\n", 3, x->timeout_ms);
    x->sent_dot = 1;
    return f == IO_OK ? IO_OK : fail(x, f, "while sending the message", NULL);
}

static enum io_fail greet(struct xact *x)
{
    struct rcpt_reply r = {0};
    enum io_fail f = read_reply(x, "before the greeting", &r, NULL);
    if (f != IO_OK)
        return f;
    if (r.code != 220) {
        snprintf(x->err, x->errlen, "LMTP %s: greeting: %s", x->p->target, r.text);
        return IO_GARBAGE;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "LHLO %s\r\n", x->p->lhlo);
    if ((f = write_all(x->c, cmd, strlen(cmd), x->timeout_ms)) != IO_OK)
        return fail(x, f, "after the greeting", NULL);
    x->c->pipelining = 0;
    if ((f = read_reply(x, "after LHLO", &r, &x->c->pipelining)) != IO_OK)
        return f;
    if (r.code != 250) {
        snprintf(x->err, x->errlen, "LMTP %s: LHLO: %s", x->p->target, r.text);
        return IO_GARBAGE;
    }
    return IO_OK;
}

static void set_reply(struct rcpt_reply *r, const struct rcpt_reply *from)
{
    if (!r->code)
        *r = *from;
}

/* One transaction on x->c. Fills the replies it got answers for. */
static enum io_fail transaction(struct xact *x, int reused, const char *mail_from,
                                char *const *rcpts, size_t n, const char *data, size_t len,
                                struct rcpt_reply *replies)
{
    enum io_fail f;
    if (!reused && (f = greet(x)) != IO_OK)
        return f;
    /* Commands in order: [RSET] MAIL RCPT... DATA. With PIPELINING (RFC 2920) they go out in
     * one write and the replies are read in order; without, one at a time. */
    size_t ncmd = (reused ? 1 : 0) + 1 + n + 1;
    struct buf *cmds = xcalloc(ncmd, sizeof *cmds);
    size_t k = 0;
    if (reused)
        buf_puts(&cmds[k++], "RSET\r\n");
    buf_printf(&cmds[k++], "MAIL FROM:<%s>\r\n", mail_from ? mail_from : "");
    for (size_t i = 0; i < n; i++)
        buf_printf(&cmds[k++], "RCPT TO:<%s>\r\n", rcpts[i]);
    buf_puts(&cmds[k++], "DATA\r\n");
    f = IO_OK;
    if (x->c->pipelining) {
        struct buf all = {0};
        for (size_t i = 0; i < ncmd; i++)
            buf_append(&all, cmds[i].data, cmds[i].len);
        f = write_all(x->c, all.data, all.len, x->timeout_ms);
        buf_free(&all);
        if (f != IO_OK)
            f = fail(x, f, "sending the envelope", NULL);
    }
    size_t accepted = 0;
    struct rcpt_reply r = {0}, mail = {0};
    int *ok = xcalloc(n ? n : 1, sizeof *ok);
    for (size_t i = 0; i < ncmd && f == IO_OK; i++) {
        size_t ri = i - (reused ? 1 : 0) - 1; /* the recipient, for RCPT commands */
        int is_rset = reused && i == 0, is_mail = i == (reused ? 1u : 0u), is_data = i == ncmd - 1;
        if (!x->c->pipelining) {
            /* Lockstep: nothing more after a refused MAIL, no DATA without a recipient. */
            if (!is_rset && !is_mail && mail.code / 100 != 2)
                break;
            if (is_data && accepted == 0)
                break;
            if ((f = write_all(x->c, cmds[i].data, cmds[i].len, x->timeout_ms)) != IO_OK) {
                f = fail(x, f, "sending the envelope", NULL);
                break;
            }
        }
        static const char *const after[] = {"after RSET", "after MAIL FROM", "after RCPT TO",
                                            "after DATA"};
        const char *what = after[is_rset ? 0 : is_mail ? 1 : is_data ? 3 : 2];
        if ((f = read_reply(x, what, &r, NULL)) != IO_OK)
            break;
        if (is_rset) {
            if (r.code != 250) {
                snprintf(x->err, x->errlen, "LMTP %s: RSET: %s", x->p->target, r.text);
                f = IO_GARBAGE;
            }
        } else if (is_mail) {
            mail = r;
            if (r.code / 100 != 2)
                for (size_t j = 0; j < n; j++)
                    set_reply(&replies[j], &r);
        } else if (!is_data) {
            if (mail.code / 100 != 2)
                continue;
            if (r.code / 100 == 2) {
                ok[ri] = 1;
                accepted++;
            } else {
                set_reply(&replies[ri], &r);
            }
        } else if (accepted > 0 && r.code == 354) {
            if ((f = send_message(x, data, len)) != IO_OK)
                break;
            /* RFC 2033 4.2: one reply per accepted recipient, in RCPT order. */
            for (size_t j = 0; j < n && f == IO_OK; j++) {
                if (!ok[j])
                    continue;
                if ((f = read_reply(x, "after the message", &r, NULL)) == IO_OK)
                    set_reply(&replies[j], &r);
            }
        } else if (accepted > 0) {
            for (size_t j = 0; j < n; j++)
                if (ok[j])
                    set_reply(&replies[j], &r);
        } else if (r.code == 354) {
            /* DATA accepted with no recipient: the session is in a state we cannot trust. */
            snprintf(x->err, x->errlen, "LMTP %s: DATA accepted without a recipient", x->p->target);
            f = IO_GARBAGE;
        }
    }
    for (size_t i = 0; i < ncmd; i++)
        buf_free(&cmds[i]);
    free(cmds);
    free(ok);
    return f;
}

void lmtp_send(struct lmtp_pool *p, const char *mail_from, char *const *rcpts, size_t n,
               const char *data, size_t len, long long timeout_ms, struct rcpt_reply *replies,
               char *err, size_t errlen)
{
    err[0] = '\0';
    for (size_t i = 0; i < n; i++)
        replies[i].code = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct conn *c = pool_take(p);
        int reused = c != NULL;
        if (!c && !(c = conn_open(p, timeout_ms, err, errlen)))
            break;
        struct xact x = {.p = p, .c = c, .timeout_ms = timeout_ms, .err = err, .errlen = errlen};
        enum io_fail f = transaction(&x, reused, mail_from, rcpts, n, data, len, replies);
        if (f == IO_OK) {
            if (x.closing)
                conn_close(c);
            else
                pool_give(p, c);
            err[0] = '\0';
            return;
        }
        conn_close(c);
        /* A pooled connection the server closed while idle: nothing was delivered over it,
         * so a fresh one may try again. After the end of the message, never: the server may
         * have delivered, and a second try could duplicate the message in a mailbox. */
        if (!(reused && f == IO_CLOSED && !x.sent_dot))
            break;
        for (size_t i = 0; i < n; i++)
            replies[i].code = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (replies[i].code)
            continue;
        replies[i].code = 451;
        snprintf(replies[i].text, sizeof replies[i].text, "451 4.4.1 %s", err);
        printable(replies[i].text);
    }
}
