/* SMTP client on libetpan's mailsmtp. */
#include "delivery/smtp_client.h"

#include "delivery/tls_verify.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/utf8.h"

#include <libetpan/libetpan.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 5xx replies are final; everything else (4xx, network trouble) is worth retrying. */
static int failure(mailsmtp *s, int r, const char *step, char *err, size_t errlen)
{
    const char *reply = s && s->response ? s->response : mailsmtp_strerror(r);
    int code = s ? s->response_code : 0;
    int n = (int)strcspn(reply, "\r\n");
    snprintf(err, errlen, "%s: %d %.*s", step, code, n, reply);
    return code >= 500 && code <= 599 ? SMTP_SEND_REJECTED : SMTP_SEND_TEMPFAIL;
}

static pthread_mutex_t helo_lock = PTHREAD_MUTEX_INITIALIZER;
static char helo_name[256] = "localhost";

void smtp_client_set_helo(const char *name)
{
    pthread_mutex_lock(&helo_lock);
    snprintf(helo_name, sizeof helo_name, "%s", name && *name ? name : "localhost");
    pthread_mutex_unlock(&helo_lock);
}

/* The EHLO keywords sluice acts on (libetpan's own EHLO parsing is bypassed, see command()). */
enum { EXT_STARTTLS = 1, EXT_DSN = 2, EXT_SMTPUTF8 = 4 };

static int ehlo_keyword(const char *l)
{
    static const struct {
        const char *kw;
        int bit;
    } kws[] = {{"STARTTLS", EXT_STARTTLS}, {"DSN", EXT_DSN}, {"SMTPUTF8", EXT_SMTPUTF8}};
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
        size_t n = strlen(kws[i].kw);
        if (strlen(l) >= 4 + n && strncasecmp(l + 4, kws[i].kw, n) == 0 &&
            (l[4 + n] == '\0' || l[4 + n] == ' '))
            return kws[i].bit;
    }
    return 0;
}

/* One command and its (possibly multi-line) reply, over libetpan's stream: libetpan's own
 * EHLO can only give the machine's name or address, not the one the config says, and its
 * MAIL/RCPT know neither SMTPUTF8 nor ORCPT's xtext. Returns the reply code (0 when the
 * connection failed); first holds the first line of the reply, and *ext (when not NULL) the
 * EXT_* keywords the lines advertised. */
static int command(mailsmtp *s, const char *cmd, char *first, size_t firstlen, int *ext)
{
    if (mailstream_write(s->stream, cmd, strlen(cmd)) < 0 || mailstream_flush(s->stream) < 0)
        return 0;
    MMAPString *line = mmap_string_new("");
    if (!line)
        return 0;
    int code = 0, more = 1;
    first[0] = '\0';
    while (more) {
        const char *l = mailstream_read_line_remove_eol(s->stream, line);
        if (!l || strlen(l) < 3) {
            code = 0;
            break;
        }
        code = atoi(l);
        more = l[3] == '-';
        if (!first[0])
            snprintf(first, firstlen, "%s", l);
        if (ext)
            *ext |= ehlo_keyword(l);
    }
    mmap_string_free(line);
    return code;
}

/* EHLO with our name, HELO when the server does not know EHLO. Sets what libetpan's later
 * calls read of the greeting (ESMTP, STARTTLS offered) and *ext. */
static int greet(mailsmtp *s, const char *step, int *ext, char *err, size_t errlen)
{
    char name[256], cmd[300], first[512];
    pthread_mutex_lock(&helo_lock);
    snprintf(name, sizeof name, "%s", helo_name);
    pthread_mutex_unlock(&helo_lock);
    *ext = 0;
    snprintf(cmd, sizeof cmd, "EHLO %s\r\n", name);
    int code = command(s, cmd, first, sizeof first, ext);
    if (code == 250) {
        s->esmtp = MAILSMTP_ESMTP | (*ext & EXT_STARTTLS ? MAILSMTP_ESMTP_STARTTLS : 0) |
                   (*ext & EXT_DSN ? MAILSMTP_ESMTP_DSN : 0);
        return 0;
    }
    *ext = 0;
    if (code >= 500 && code <= 504) {
        snprintf(cmd, sizeof cmd, "HELO %s\r\n", name);
        code = command(s, cmd, first, sizeof first, NULL);
        if (code == 250) {
            s->esmtp = 0;
            return 0;
        }
    }
    if (code == 0) {
        snprintf(err, errlen, "%s: connection lost", step);
        return SMTP_SEND_TEMPFAIL;
    }
    snprintf(err, errlen, "%s: %s", step, first);
    return code >= 500 && code <= 599 ? SMTP_SEND_REJECTED : SMTP_SEND_TEMPFAIL;
}

/* MAIL FROM or RCPT TO with the parameters the next hop understands. */
static int envelope_command(mailsmtp *s, const char *cmd, const char *step, char *err,
                            size_t errlen)
{
    char first[512];
    int code = command(s, cmd, first, sizeof first, NULL);
    if (code >= 200 && code <= 299)
        return 0;
    if (code == 0) {
        snprintf(err, errlen, "%s: connection lost", step);
        return SMTP_SEND_TEMPFAIL;
    }
    snprintf(err, errlen, "%s: %s", step, first);
    return code >= 500 && code <= 599 ? SMTP_SEND_REJECTED : SMTP_SEND_TEMPFAIL;
}

static const char *const notify_words[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};

static void rcpt_params(struct buf *cmd, const struct rcpt_dsn *d)
{
    if (d->notify) {
        buf_puts(cmd, " NOTIFY=");
        for (int b = 0, first = 1; b < 4; b++)
            if (d->notify & (1u << b)) {
                buf_printf(cmd, "%s%s", first ? "" : ",", notify_words[b]);
                first = 0;
            }
    }
    if (d->orcpt) {
        const char *semi = strchr(d->orcpt, ';');
        char x[1600];
        if (semi && xtext_encode(semi + 1, x, sizeof x) >= 0)
            buf_printf(cmd, " ORCPT=%.*s;%s", (int)(semi - d->orcpt), d->orcpt, x);
    }
}

/* MAIL and every RCPT. SMTPUTF8 is required of the next hop when asked for (RFC 6531 §3.2: a
 * UTF-8 envelope cannot be downgraded here); DSN parameters go only to a hop that offers DSN. */
static int send_envelope(mailsmtp *s, int ext, const char *mail_from, char *const *rcpts, size_t n,
                         const struct smtp_send_ext *x, char *err, size_t errlen)
{
    if (x && x->smtputf8 && !(ext & EXT_SMTPUTF8)) {
        snprintf(err, errlen, "MAIL FROM: 553 5.6.7 the next hop does not offer SMTPUTF8");
        return SMTP_SEND_REJECTED;
    }
    bool dsn = x && (ext & EXT_DSN);
    struct buf cmd = {0};
    buf_printf(&cmd, "MAIL FROM:<%s>", mail_from);
    if (x && x->smtputf8)
        buf_puts(&cmd, " SMTPUTF8");
    if (dsn && x->ret != DSN_RET_UNSPECIFIED)
        buf_puts(&cmd, x->ret == DSN_RET_FULL ? " RET=FULL" : " RET=HDRS");
    char envid[400];
    if (dsn && x->envid && xtext_encode(x->envid, envid, sizeof envid) >= 0)
        buf_printf(&cmd, " ENVID=%s", envid);
    buf_puts(&cmd, "\r\n");
    int rc = envelope_command(s, buf_cstr(&cmd), "MAIL FROM", err, errlen);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        cmd.len = 0;
        buf_printf(&cmd, "RCPT TO:<%s>", rcpts[i]);
        if (dsn && x->rcpt_dsn)
            rcpt_params(&cmd, &x->rcpt_dsn[i]);
        buf_puts(&cmd, "\r\n");
        rc = envelope_command(s, buf_cstr(&cmd), "RCPT TO", err, errlen);
    }
    buf_free(&cmd);
    return rc;
}

/* After the handshake: the chain libetpan saw, checked for host. */
static int verify_peer(mailsmtp *s, const char *host, const char *ca_file, char *err, size_t errlen)
{
    carray *chain = mailstream_get_certificate_chain(s->stream);
    size_t n = chain ? carray_count(chain) : 0;
    const unsigned char *ders[16];
    size_t lens[16];
    if (n > 16)
        n = 16;
    for (size_t i = 0; i < n; i++) {
        MMAPString *der = carray_get(chain, (unsigned int)i);
        ders[i] = (const unsigned char *)der->str;
        lens[i] = der->len;
    }
    int rc = tls_verify_chain(ders, lens, n, host, ca_file, err, errlen);
    if (chain)
        mailstream_certificate_chain_free(chain);
    return rc;
}

static const char *tls_names[] = {"none", "opportunistic", "require", "verify"};

int smtp_send(const char *host, int port, enum smtp_tls tls, const char *ca_file,
              const char *mail_from, char *const *rcpts, size_t n, const struct smtp_send_ext *x,
              const char *data, size_t len, long timeout_s, char *err, size_t errlen)
{
    int ext = 0;
    mailsmtp *s = mailsmtp_new(0, NULL);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return SMTP_SEND_TEMPFAIL;
    }
    mailsmtp_set_timeout(s, timeout_s);
    int rc = 0, r = mailsmtp_socket_connect(s, host, (uint16_t)port);
    if (r != MAILSMTP_NO_ERROR) {
        snprintf(err, errlen, "connect %s:%d: %s", host, port, mailsmtp_strerror(r));
        mailsmtp_free(s);
        return SMTP_SEND_TEMPFAIL;
    }
    if ((rc = greet(s, "EHLO", &ext, err, errlen)) != 0)
        goto out;
    const char *how = "no TLS (tls = \"none\")";
    if (tls != SMTP_TLS_NONE) {
        if (s->esmtp & MAILSMTP_ESMTP_STARTTLS) {
            if ((r = mailsmtp_socket_starttls(s)) != MAILSMTP_NO_ERROR) {
                rc = failure(s, r, "STARTTLS", err, errlen);
                goto out;
            }
            char why[256];
            if (tls == SMTP_TLS_VERIFY) {
                if (verify_peer(s, host, ca_file, why, sizeof why) < 0) {
                    snprintf(err, errlen, "STARTTLS: %s (tls = \"verify\")", why);
                    rc = SMTP_SEND_TEMPFAIL;
                    goto out;
                }
                how = "TLS, certificate verified";
            } else {
                how = verify_peer(s, host, ca_file, why, sizeof why) == 0
                          ? "TLS, certificate valid (not required)"
                          : "TLS, certificate not verified";
            }
            if ((rc = greet(s, "EHLO after STARTTLS", &ext, err, errlen)) != 0)
                goto out;
        } else if (tls == SMTP_TLS_REQUIRE || tls == SMTP_TLS_VERIFY) {
            snprintf(err, errlen, "%s:%d does not offer STARTTLS and tls = \"%s\"", host, port,
                     tls_names[tls]);
            rc = SMTP_SEND_TEMPFAIL;
            goto out;
        } else {
            how = "no TLS (not offered)";
        }
    }
    log_msg(LOG_INFO, "smtp: to %s:%d: %s", host, port, how);
    if ((rc = send_envelope(s, ext, mail_from, rcpts, n, x, err, errlen)) != 0)
        goto out;
    /* libetpan ends the data with CRLF "." CRLF itself: a final CRLF of ours would become an
     * extra empty line. */
    if (len >= 2 && data[len - 2] == '\r' && data[len - 1] == '\n')
        len -= 2;
    if ((r = mailsmtp_data(s)) != MAILSMTP_NO_ERROR ||
        (r = mailsmtp_data_message(s, data, len)) != MAILSMTP_NO_ERROR) {
        rc = failure(s, r, "DATA", err, errlen);
        goto out;
    }
    mailsmtp_quit(s);
out:
    mailsmtp_free(s);
    return rc;
}

const char *smtp_skip_return_path(const char *data, size_t *len)
{
    if (*len > 12 && strncmp(data, "Return-Path:", 12) == 0) {
        const char *eol = memchr(data, '\n', *len);
        if (eol) {
            *len -= (size_t)(eol + 1 - data);
            return eol + 1;
        }
    }
    return data;
}
