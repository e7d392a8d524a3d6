/* relay { to = "host:port", tls = "none"|"opportunistic"|"require"|"verify", tls_ca = FILE,
 *         mail_from = "preserve"|"replace", sender = "..." }: forwards the message (with the
 * headers sluice added) over SMTP after acceptance, from the spool (SES Mail Manager's Relay).
 * A 5xx from the next hop is final; anything else is retried until expire_after. */
#include "actions/action.h"
#include "delivery/smtp_client.h"
#include "core/utf8.h"
#include "lua/lua_fields.h"
#include "core/address.h"
#include "core/xalloc.h"
#include "spool/spool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct relay_state {
    char *host;
    int port;
    enum smtp_tls tls;
    char *tls_ca; /* tls = "verify": the CAs to trust (PEM); NULL for the system's */
    int replace_from;
    char *sender;
    long long timeout_ms;
};

static int relay_parse(struct lua_State *L, int idx, void **state, char *err, size_t errlen)
{
    static const char *const keys[] = {"to",     "tls",        "tls_ca", "mail_from",
                                       "sender", "timeout_ms", NULL};
    struct relay_state *s = xcalloc(1, sizeof *s);
    *state = s;
    s->timeout_ms = 30000;
    char *to = NULL, *tls = NULL, *from = NULL;
    int rc = -1;
    if (lf_check_keys(L, idx, "relay", keys, err, errlen) < 0 ||
        lf_string(L, idx, "to", true, &to, err, errlen) < 0 ||
        lf_string(L, idx, "tls", false, &tls, err, errlen) < 0 ||
        lf_string(L, idx, "tls_ca", false, &s->tls_ca, err, errlen) < 0 ||
        lf_string(L, idx, "mail_from", false, &from, err, errlen) < 0 ||
        lf_string(L, idx, "sender", false, &s->sender, err, errlen) < 0 ||
        lf_integer(L, idx, "timeout_ms", 1000, 600000, &s->timeout_ms, err, errlen) < 0)
        goto done;
    char *colon = strrchr(to, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (!colon || colon == to || port <= 0 || port > 65535) {
        snprintf(err, errlen, "relay: to must be \"host:port\", got \"%s\"", to);
        goto done;
    }
    const char *h = to;
    size_t hl = (size_t)(colon - to);
    if (to[0] == '[' && colon[-1] == ']') {
        h++;
        hl -= 2;
    }
    s->host = xstrndup(h, hl);
    s->port = (int)port;
    if (!tls || strcmp(tls, "opportunistic") == 0)
        s->tls = SMTP_TLS_OPPORTUNISTIC;
    else if (strcmp(tls, "none") == 0)
        s->tls = SMTP_TLS_NONE;
    else if (strcmp(tls, "require") == 0)
        s->tls = SMTP_TLS_REQUIRE;
    else if (strcmp(tls, "verify") == 0)
        s->tls = SMTP_TLS_VERIFY;
    else {
        snprintf(err, errlen,
                 "relay: tls must be \"none\", \"opportunistic\", \"require\" or \"verify\"");
        goto done;
    }
    if (s->tls_ca && s->tls != SMTP_TLS_VERIFY) {
        snprintf(err, errlen, "relay: tls_ca is only used with tls = \"verify\"");
        goto done;
    }
    if (s->tls_ca && access(s->tls_ca, R_OK) != 0) {
        snprintf(err, errlen, "relay: tls_ca '%s' cannot be read: %s", s->tls_ca, strerror(errno));
        goto done;
    }
    if (from && strcmp(from, "replace") == 0) {
        s->replace_from = 1;
        if (!s->sender) {
            snprintf(err, errlen, "relay: mail_from = \"replace\" needs sender = \"address\"");
            goto done;
        }
    } else if (from && strcmp(from, "preserve") != 0) {
        snprintf(err, errlen, "relay: mail_from must be \"preserve\" or \"replace\"");
        goto done;
    }
    if (s->sender && !address_valid(s->sender)) {
        snprintf(err, errlen, "relay: sender '%s' is not a valid address", s->sender);
        goto done;
    }
    rc = 0;
done:
    free(to);
    free(tls);
    free(from);
    return rc;
}

static int relay_deliver(const void *state, struct spool_job *job, char *err, size_t errlen)
{
    const struct relay_state *s = state;
    const char *from = s->replace_from ? s->sender : job->env.mail_from;
    size_t len = job->content.len;
    const char *data = smtp_skip_return_path(job->content.data, &len);
    /* The client's SMTPUTF8 and DSN parameters travel on (RFC 6531 §3.2, RFC 3461 §5.2). */
    struct smtp_send_ext x = {job->env.smtputf8 || utf8_non_ascii(from), job->env.ret,
                              job->env.dsn_envid, job->env.rcpt_dsn};
    int rc = smtp_send(s->host, s->port, s->tls, s->tls_ca, from, job->env.rcpts, job->env.nrcpts,
                       &x, data, len, (long)((s->timeout_ms + 999) / 1000), err, errlen);
    return rc == SMTP_SEND_REJECTED ? ACTION_DELIVER_REJECTED : rc == 0 ? 0 : -1;
}

static void relay_describe(const void *state, struct buf *out)
{
    const struct relay_state *s = state;
    static const char *const tls[] = {"none", "opportunistic", "require", "verify"};
    buf_printf(out, "to=%s:%d tls=%s mail_from=%s", s->host, s->port, tls[s->tls],
               s->replace_from ? s->sender : "preserve");
    if (s->tls_ca)
        buf_printf(out, " tls_ca=%s", s->tls_ca);
}

static void relay_free(void *state)
{
    struct relay_state *s = state;
    if (!s)
        return;
    free(s->host);
    free(s->sender);
    free(s->tls_ca);
    free(s);
}

const struct action_type action_relay = {
    .name = "relay",
    .delivers = true,
    .parse = relay_parse,
    .describe = relay_describe,
    .free_state = relay_free,
    .deliver = relay_deliver,
};
