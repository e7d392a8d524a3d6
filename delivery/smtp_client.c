/* SMTP client on libetpan's mailsmtp. */
#include "delivery/smtp_client.h"

#include <libetpan/libetpan.h>
#include <stdio.h>
#include <string.h>

/* 5xx replies are final; everything else (4xx, network trouble) is worth retrying. */
static int failure(mailsmtp *s, int r, const char *step, char *err, size_t errlen)
{
    const char *reply = s && s->response ? s->response : mailsmtp_strerror(r);
    int code = s ? s->response_code : 0;
    int n = (int)strcspn(reply, "\r\n");
    snprintf(err, errlen, "%s: %d %.*s", step, code, n, reply);
    return code >= 500 && code <= 599 ? SMTP_SEND_REJECTED : SMTP_SEND_TEMPFAIL;
}

static int greet(mailsmtp *s)
{
    int r = mailesmtp_ehlo(s);
    if (r == MAILSMTP_ERROR_NOT_IMPLEMENTED)
        r = mailsmtp_helo(s);
    return r;
}

int smtp_send(const char *host, int port, enum smtp_tls tls, const char *mail_from,
              char *const *rcpts, size_t n, const char *data, size_t len, long timeout_s, char *err,
              size_t errlen)
{
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
    if ((r = greet(s)) != MAILSMTP_NO_ERROR) {
        rc = failure(s, r, "EHLO", err, errlen);
        goto out;
    }
    if (tls != SMTP_TLS_NONE) {
        if (s->esmtp & MAILSMTP_ESMTP_STARTTLS) {
            if ((r = mailsmtp_socket_starttls(s)) != MAILSMTP_NO_ERROR ||
                (r = greet(s)) != MAILSMTP_NO_ERROR) {
                rc = failure(s, r, "STARTTLS", err, errlen);
                goto out;
            }
        } else if (tls == SMTP_TLS_REQUIRE) {
            snprintf(err, errlen, "%s:%d does not offer STARTTLS and tls = \"require\"", host,
                     port);
            rc = SMTP_SEND_TEMPFAIL;
            goto out;
        }
    }
    if ((r = mailsmtp_mail(s, mail_from)) != MAILSMTP_NO_ERROR) {
        rc = failure(s, r, "MAIL FROM", err, errlen);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((r = mailsmtp_rcpt(s, rcpts[i])) != MAILSMTP_NO_ERROR) {
            rc = failure(s, r, "RCPT TO", err, errlen);
            goto out;
        }
    }
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
