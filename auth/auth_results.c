/* The result headers: Authentication-Results (RFC 8601), Received-SPF (RFC 7208 §9.1) and the
 * X-Sluice verdict headers in SES's terms. Values that came from the sender (addresses,
 * domains) are quoted when they are not plain tokens, and never carry control characters. */
#include "auth/checks.h"
#include "core/buf.h"
#include "core/message.h"

#include <string.h>

/* Appends s plain when it is a dot-atom (with '@' too when at is set: RFC 8601's pvalue allows
 * an address), else as a quoted-string. */
static void put_token(struct buf *b, const char *s, bool at)
{
    bool plain = *s != '\0' && (at || !strchr(s, '@'));
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    "!#$%&'*+-/=?^_`{|}~.@",
                    *p))
            plain = false;
    if (plain) {
        buf_puts(b, s);
        return;
    }
    buf_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            buf_puts(b, "?");
        else
            buf_append(b, p, 1);
    }
    buf_puts(b, "\"");
}

/* A comment: parentheses and control characters replaced. */
static void put_value(struct buf *b, const char *s)
{
    put_token(b, s, true);
}

static void put_comment(struct buf *b, const char *s)
{
    buf_puts(b, " (");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        buf_append(b, (c < 0x20 || c == 0x7f || c == '(' || c == ')' || c == '\\') ? "?" : p, 1);
    }
    buf_puts(b, ")");
}

static void spf_comment(struct buf *b, const struct message *m, const struct auth_details *a,
                        const char *authserv_id)
{
    const char *id = a->spf_identity ? a->spf_identity : "";
    struct buf c = {0};
    switch (a->spf) {
    case SPF_RES_PASS:
        buf_printf(&c, "%s: domain of %s designates %s as permitted sender", authserv_id, id,
                   m->env.client_ip);
        break;
    case SPF_RES_FAIL:
    case SPF_RES_SOFTFAIL:
        buf_printf(&c, "%s: domain of %s does not designate %s as permitted sender", authserv_id,
                   id, m->env.client_ip);
        break;
    case SPF_RES_NEUTRAL:
        buf_printf(&c, "%s: %s is neither permitted nor denied by domain of %s", authserv_id,
                   m->env.client_ip, id);
        break;
    default:
        buf_printf(&c, "%s: %s", authserv_id, a->spf_reason ? a->spf_reason : "no SPF result");
    }
    put_comment(b, buf_cstr(&c));
    buf_free(&c);
}

static const char *policy_letter_name(char p)
{
    return p == 'r' ? "reject" : p == 'q' ? "quarantine" : p == 'n' ? "none" : NULL;
}

static void add_received_spf(struct message *m, const struct auth_details *a,
                             const char *authserv_id)
{
    struct buf b = {0};
    buf_puts(&b, spf_res_name(a->spf));
    spf_comment(&b, m, a, authserv_id);
    buf_printf(&b, "\r\n\tclient-ip=%s; envelope-from=", m->env.client_ip);
    put_token(&b, m->env.mail_from ? m->env.mail_from : "", false);
    buf_puts(&b, "; helo=");
    put_token(&b, m->env.helo ? m->env.helo : "", false);
    buf_puts(&b, ";\r\n\treceiver=");
    put_token(&b, authserv_id, false);
    buf_printf(&b, "; identity=%s;", a->spf_helo ? "helo" : "mailfrom");
    message_add_header(m, "Received-SPF", buf_cstr(&b));
    buf_free(&b);
}

static void add_authentication_results(struct message *m, const struct auth_details *a,
                                       const char *authserv_id)
{
    struct buf b = {0};
    buf_puts(&b, authserv_id);

    buf_printf(&b, ";\r\n\tspf=%s", spf_res_name(a->spf));
    spf_comment(&b, m, a, authserv_id);
    buf_printf(&b, " %s=", a->spf_helo ? "smtp.helo" : "smtp.mailfrom");
    put_value(&b, a->spf_helo ? (m->env.helo ? m->env.helo : "")
                              : (a->spf_identity ? a->spf_identity : ""));

    if (a->nsigs == 0)
        buf_puts(&b, ";\r\n\tdkim=none");
    for (size_t i = 0; i < a->nsigs; i++) {
        const struct dkim_sig_detail *s = &a->sigs[i];
        buf_printf(&b, ";\r\n\tdkim=%s", dkim_res_name(s->result));
        if (s->reason)
            put_comment(&b, s->reason);
        if (s->domain[0]) {
            buf_puts(&b, " header.d=");
            put_value(&b, s->domain);
        }
        if (s->selector[0]) {
            buf_puts(&b, " header.s=");
            put_value(&b, s->selector);
        }
    }

    buf_printf(&b, ";\r\n\tdmarc=%s", dmarc_res_name(a->dmarc));
    const char *p = policy_letter_name(a->p), *sp = policy_letter_name(a->sp);
    if (p || a->dmarc_reason) {
        struct buf c = {0};
        if (p)
            buf_printf(&c, "p=%s", p);
        if (sp)
            buf_printf(&c, " sp=%s", sp);
        if (a->dmarc_reason)
            buf_printf(&c, "%s%s", c.len ? " " : "", a->dmarc_reason);
        put_comment(&b, buf_cstr(&c));
        buf_free(&c);
    }
    if (m->env.verdicts.dmarc_policy != DMARC_POLICY_UNSET) {
        buf_puts(&b, " policy.dmarc=");
        buf_puts(&b, m->env.verdicts.dmarc_policy == DMARC_POLICY_REJECT       ? "reject"
                     : m->env.verdicts.dmarc_policy == DMARC_POLICY_QUARANTINE ? "quarantine"
                                                                               : "none");
    }
    if (a->from_domain) {
        buf_puts(&b, " header.from=");
        put_value(&b, a->from_domain);
    }
    message_add_header(m, "Authentication-Results", buf_cstr(&b));
    buf_free(&b);
}

void auth_results_add(struct message *m, const char *authserv_id)
{
    const struct auth_details *a = m->auth;
    /* Added bottom-up: the stored copy shows the newest added header first. */
    if (m->env.verdicts.dmarc_policy != DMARC_POLICY_UNSET)
        message_add_header(m, "X-Sluice-DMARC-Policy",
                           dmarc_policy_name(m->env.verdicts.dmarc_policy));
    message_add_header(m, "X-Sluice-DMARC-Verdict", verdict_name(m->env.verdicts.dmarc));
    message_add_header(m, "X-Sluice-DKIM-Verdict", verdict_name(m->env.verdicts.dkim));
    message_add_header(m, "X-Sluice-SPF-Verdict", verdict_name(m->env.verdicts.spf));
    add_received_spf(m, a, authserv_id);
    add_authentication_results(m, a, authserv_id);
}
