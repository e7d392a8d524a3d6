/* auth_check(): SPF, then DKIM, then DMARC (which needs both), then the result headers. */
#include "auth/auth.h"
#include "auth/checks.h"
#include "auth/rdns.h"
#include "auth/dns.h"
#include "core/log.h"
#include "core/message.h"
#include "core/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum verdict spf_verdict(enum spf_res r)
{
    switch (r) {
    case SPF_RES_PASS:
        return VERDICT_PASS;
    case SPF_RES_FAIL:
    case SPF_RES_SOFTFAIL:
        return VERDICT_FAIL;
    case SPF_RES_NONE:
    case SPF_RES_NEUTRAL:
        return VERDICT_GRAY;
    default:
        return VERDICT_PROCESSING_FAILED;
    }
}

/* The authserv-id an Authentication-Results value starts with (RFC 8601 §2.2), into out. */
static void authserv_id_of(const char *v, char *out, size_t outlen)
{
    size_t o = 0;
    int depth = 0;
    for (const char *p = v; *p && o + 1 < outlen; p++) {
        if (depth) {
            depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
            continue;
        }
        if (*p == '(') {
            depth = 1;
            continue;
        }
        if (*p == ' ' || *p == '\t') {
            if (o)
                break;
            continue;
        }
        if (*p == ';')
            break;
        out[o++] = *p;
    }
    out[o] = '\0';
}

/* Whether the sender's field f pretends to be ours (RFC 8601 §5): results under our
 * authserv-id and our verdict headers. */
static bool forged(const char *data, const struct hdr_field *f, const char *authserv_id)
{
    static const char *const ours[] = {"X-Sluice-SPF-Verdict", "X-Sluice-DKIM-Verdict",
                                       "X-Sluice-DMARC-Verdict", "X-Sluice-DMARC-Policy", NULL};
    for (size_t i = 0; ours[i]; i++)
        if (header_is(data, f, ours[i]))
            return true;
    if (!header_is(data, f, "Authentication-Results"))
        return false;
    char *v = header_value(data, f);
    char id[256];
    authserv_id_of(v, id, sizeof id);
    free(v);
    return strcasecmp(id, authserv_id) == 0;
}

static void remove_forged(struct message *m, const struct hdr_list *h, const char *authserv_id)
{
    const char *data = m->body.data;
    size_t nforged = 0;
    for (size_t i = 0; i < h->n; i++)
        nforged += forged(data, &h->f[i], authserv_id);
    if (nforged == 0)
        return;
    struct buf out = {0};
    size_t pos = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (!forged(data, &h->f[i], authserv_id))
            continue;
        buf_append(&out, data + pos, h->f[i].off - pos);
        pos = h->f[i].off + h->f[i].len;
    }
    buf_append(&out, data + pos, m->body.len - pos);
    buf_free(&m->body);
    m->body = out;
    log_msg(LOG_INFO, "qid=%s removed %zu forged authentication header(s)", m->env.qid, nforged);
}

void auth_check(const char *hostname, const struct dns_cfg *dns, bool dmarc_tree_walk,
                struct message *m)
{
    const char *authserv_id = m->hostname ? m->hostname : hostname;
    if (!authserv_id)
        authserv_id = "localhost";
    auth_details_free(m->auth);
    struct auth_details *a = m->auth = xcalloc(1, sizeof *a);
    m->auth_free = auth_details_free; /* the message owns a from here */
    dns_begin(dns);

    if (!m->env.client_rdns)
        m->env.client_rdns = rdns_lookup(m->env.client_ip);
    spf_check(m->env.client_ip, m->env.helo, m->env.mail_from ? m->env.mail_from : "", a);
    m->env.verdicts.spf = spf_verdict(a->spf);

    buf_cstr(&m->body); /* never NULL below */
    struct hdr_list h;
    headers_parse(m->body.data, m->body.len, &h);
    m->env.verdicts.dkim = dkim_check(m->body.data, m->body.len, &h, a);
    m->env.verdicts.dmarc =
        dmarc_check(m->body.data, &h, a, dmarc_tree_walk, &m->env.verdicts.dmarc_policy);
    /* After DKIM, which must see the message as signed. */
    remove_forged(m, &h, authserv_id);
    free(h.f);
    auth_results_add(m, authserv_id);
    /* The verdicts are logged with the message's own line (receiver/session.c). */
}

void auth_details_free(struct auth_details *a)
{
    if (!a)
        return;
    free(a->spf_identity);
    free(a->spf_domain);
    free(a->spf_reason);
    for (size_t i = 0; i < a->nsigs; i++) {
        free(a->sigs[i].domain);
        free(a->sigs[i].selector);
        free(a->sigs[i].reason);
    }
    free(a->sigs);
    free(a->from_domain);
    free(a->dmarc_reason);
    free(a->dmarc_record);
    free(a->dmarc_record_domain);
    free(a);
}
