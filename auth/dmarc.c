/* DMARC (RFC 7489, and RFC 9989's tree walk). The record is fetched through auth/dns and
 * parsed by dmarc_record.c, the organizational domain comes from org_domain.c (libpsl), and
 * alignment and the verdict are computed here: libopendmarc 1.4.2 treated strict alignment as
 * relaxed, accepted "v=dmarc1", skipped DMARC for a malformed From, looked records up with its
 * own resolver and found no organizational domain under a TLD missing from the list. */
#include "auth/checks.h"
#include "auth/dmarc_record.h"
#include "auth/dns.h"
#include "auth/org_domain.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

/* --- From: domains ----------------------------------------------------------------------- */

static bool domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.' || strstr(d, "..") || !strchr(d, '.'))
        return false;
    return strspn(d, "abcdefghijklmnopqrstuvwxyz0123456789-.") == n;
}

/* Adds the domain of one mailbox ("Name <a@b>" or "a@b") to the list; false when malformed. */
static bool add_mailbox(const char *item, char ***doms, size_t *n, size_t *mailboxes)
{
    ++*mailboxes;
    const char *lt = strchr(item, '<');
    char *addr;
    if (lt) {
        const char *gt = strchr(lt, '>');
        if (!gt || strchr(gt + 1, '<') || gt[1 + strspn(gt + 1, " \t")] != '\0')
            return false;
        addr = xstrndup(lt + 1, (size_t)(gt - lt - 1));
    } else {
        addr = xstrdup(item);
    }
    const char *at = strrchr(addr, '@');
    bool ok = at != NULL && at != addr && !strchr(addr, '>');
    if (ok) {
        char *d = xstrdup(at + 1);
        size_t l = strlen(d);
        while (l > 0 && (d[l - 1] == ' ' || d[l - 1] == '\t'))
            d[--l] = '\0';
        for (char *p = d; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if ((ok = domain_ok(d))) {
            bool dup = false;
            for (size_t i = 0; i < *n; i++)
                dup |= strcmp((*doms)[i], d) == 0;
            if (!dup) {
                *doms = xrealloc(*doms, (*n + 1) * sizeof **doms);
                (*doms)[(*n)++] = d;
                d = NULL;
            }
        }
        free(d);
    }
    free(addr);
    return ok;
}

/* The distinct domains of every mailbox in a From: value (comments dropped, groups and
 * display names understood). Returns false when any part is not a valid mailbox. */
static bool from_domains(const char *v, char ***doms, size_t *n, size_t *mailboxes)
{
    size_t len = strlen(v);
    char *clean = xmalloc(len + 1), *item = xmalloc(len + 1);
    size_t c = 0;
    int depth = 0;
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        char ch = v[i];
        if (quoted) {
            if (ch == '\\' && i + 1 < len)
                i++;
            else if (ch == '"')
                quoted = false;
            clean[c++] = 'x'; /* quoted text cannot contain separators */
            continue;
        }
        if (depth) {
            if (ch == '\\' && i + 1 < len)
                i++;
            else if (ch == '(')
                depth++;
            else if (ch == ')')
                depth--;
            continue;
        }
        if (ch == '(')
            depth++;
        else {
            if (ch == '"')
                quoted = true;
            clean[c++] = ch;
        }
    }
    clean[c] = '\0';
    bool ok = !quoted && depth == 0;
    size_t start = 0;
    bool in_angle = false;
    for (size_t i = 0; ok && i <= c; i++) {
        char ch = clean[i];
        if (ch == '<')
            in_angle = true;
        else if (ch == '>')
            in_angle = false;
        if (in_angle && ch)
            continue;
        if (ch == ':') { /* group name */
            start = i + 1;
        } else if (ch == ',' || ch == ';' || ch == '\0') {
            size_t s = start, e = i;
            while (s < e && (clean[s] == ' ' || clean[s] == '\t'))
                s++;
            while (e > s && (clean[e - 1] == ' ' || clean[e - 1] == '\t'))
                e--;
            if (e > s) {
                memcpy(item, clean + s, e - s);
                item[e - s] = '\0';
                ok = add_mailbox(item, doms, n, mailboxes);
            }
            start = i + 1;
        }
    }
    free(clean);
    free(item);
    return ok;
}

/* --- the record -------------------------------------------------------------------------- */

enum lookup { REC_FOUND, REC_NONE, REC_TEMP };

/* Fetches the one DMARC record at _dmarc.domain into *rec (caller frees). Several records
 * count as none (RFC 7489 §6.6.3). */
static enum lookup fetch_record(const char *domain, char **rec)
{
    char *name = xasprintf("_dmarc.%s", domain);
    struct ub_result *res = NULL;
    enum dns_status st = dns_query(name, 16 /* TXT */, &res);
    free(name);
    if (st == DNS_TEMPFAIL)
        return REC_TEMP;
    enum lookup out = REC_NONE;
    if (st == DNS_OK) {
        size_t count, found = 0;
        char **txt = dns_txt_strings(res, &count);
        for (size_t i = 0; i < count; i++) {
            if (dmarc_is_record(txt[i])) {
                if (found++ == 0)
                    *rec = xstrdup(txt[i]);
            }
            free(txt[i]);
        }
        free(txt);
        if (found == 1)
            out = REC_FOUND;
        else if (found > 1) {
            free(*rec);
            *rec = NULL;
        }
    }
    ub_resolve_free(res);
    return out;
}

/* RFC 9989 §4.10: the names the DNS tree walk queries for domain, longest first: the domain,
 * then (past 8 labels) its last 7 labels, then one label less each time, down to the TLD. The
 * names point into domain. */
static size_t walk_targets(const char *domain, const char **out, size_t max)
{
    const char *starts[128];
    size_t n = 0;
    starts[n++] = domain;
    for (const char *p = domain; *p && n < sizeof starts / sizeof *starts; p++)
        if (*p == '.' && p[1])
            starts[n++] = p + 1;
    size_t k = 0;
    out[k++] = domain;
    for (size_t i = n > 8 ? n - 7 : 1; i < n && k < max; i++)
        out[k++] = starts[i];
    return k;
}

/* The valid DMARC record at _dmarc.target (RFC 7489 §6.6.3 / dmarc_record.h). */
static enum lookup fetch_valid(const char *target, struct dmarc_record *r, const char **why)
{
    char *rec = NULL;
    enum lookup l = fetch_record(target, &rec);
    if (l == REC_FOUND && dmarc_record_parse(rec, r, why) < 0)
        l = REC_NONE;
    free(rec);
    return l;
}

/* RFC 9989 §4.10.2: walking up from d, the first record with psd=n names the organizational
 * domain, one with psd=y makes it the name one label below; otherwise it is the shortest name
 * with a record, or d itself when there is none. */
static void walk_org_domain(const char *d, char *out, size_t outlen)
{
    const char *t[8];
    size_t n = walk_targets(d, t, 8);
    const char *org = d;
    for (size_t i = 0; i < n; i++) {
        struct dmarc_record r;
        const char *why;
        if (fetch_valid(t[i], &r, &why) != REC_FOUND)
            continue;
        if (r.psd == 'n') {
            org = t[i];
            break;
        }
        if (r.psd == 'y') {
            /* the name with one label more than t[i] */
            const char *below = d;
            for (const char *p = d; p < t[i]; p++)
                if (*p == '.' && p + 1 < t[i])
                    below = p + 1;
            org = i > 0 ? below : d;
            break;
        }
        org = t[i];
    }
    snprintf(out, outlen, "%s", org);
}

static void org_of(bool tree_walk, const char *d, char *out, size_t outlen)
{
    if (tree_walk)
        walk_org_domain(d, out, outlen);
    else
        dmarc_org_domain(d, out, outlen);
}

static bool aligned(bool tree_walk, const char *d, const char *from, const char *from_org, int mode)
{
    if (!d || !*d)
        return false;
    /* An identity written as an absolute name ("mx.example.com.", as HELO names may be) is
     * the same name: compare and walk it without the root's dot. */
    char name[256];
    size_t len = strlen(d);
    if (d[len - 1] == '.')
        len--;
    if (len == 0 || len >= sizeof name)
        return false;
    memcpy(name, d, len);
    name[len] = '\0';
    if (strcasecmp(name, from) == 0)
        return true;
    if (mode == 's')
        return false;
    char org[256];
    org_of(tree_walk, name, org, sizeof org);
    return from_org[0] && strcasecmp(org, from_org) == 0;
}

struct one_result {
    enum verdict v;
    enum dmarc_res r;
    enum dmarc_policy policy;
    char p, sp;
    const char *why;
    char *record, *record_domain; /* owned; NULL without a record */
    bool dkim_aligned, spf_aligned;
};

static enum dmarc_policy policy_of(int letter)
{
    switch (letter) {
    case 'q':
        return DMARC_POLICY_QUARANTINE;
    case 'r':
        return DMARC_POLICY_REJECT;
    default:
        return DMARC_POLICY_NONE;
    }
}

static void judge_domain(bool tree_walk, const char *from, const struct auth_details *a,
                         struct one_result *o)
{
    char org[256];
    org_of(tree_walk, from, org, sizeof org);
    char *rec = NULL;
    bool at_org = false;
    enum lookup l;
    if (tree_walk) {
        /* RFC 9989 §4.10.1: the first record walking up from the author domain */
        const char *t[8];
        size_t n = walk_targets(from, t, 8);
        l = REC_NONE;
        for (size_t i = 0; i < n && l == REC_NONE; i++) {
            struct dmarc_record r;
            const char *why;
            l = fetch_valid(t[i], &r, &why);
            if (l == REC_FOUND) {
                fetch_record(t[i], &rec);
                at_org = i > 0;
            }
        }
    } else {
        l = fetch_record(from, &rec);
        if (l == REC_NONE && org[0] && strcasecmp(org, from) != 0) {
            l = fetch_record(org, &rec);
            at_org = true;
        }
    }
    if (l == REC_TEMP) {
        free(rec);
        *o = (struct one_result){
            .v = VERDICT_PROCESSING_FAILED, .r = DMARC_RES_TEMPERROR, .why = "DNS failure"};
        return;
    }
    int p = 0, sp = 0, np = 0, adkim = 0, aspf = 0, pct = 100;
    bool testing = false;
    const char *invalid = NULL;
    if (l == REC_FOUND) {
        struct dmarc_record r;
        if (dmarc_record_parse(rec, &r, &invalid) < 0) {
            l = REC_NONE; /* §6.6.3: no DMARC processing */
        } else {
            p = r.p;
            sp = r.sp;
            adkim = r.adkim;
            aspf = r.aspf;
            pct = r.pct;
            testing = r.test;
            np = r.np;
        }
    }
    o->record = NULL;
    o->record_domain = NULL;
    if (l == REC_FOUND) {
        o->record = rec;
        o->record_domain = xstrdup(at_org ? org : from);
    } else {
        free(rec);
    }

    bool pass = false, temp = false;
    o->dkim_aligned = o->spf_aligned = false;
    if (a->spf == SPF_RES_PASS && aligned(tree_walk, a->spf_domain, from, org, aspf))
        pass = o->spf_aligned = true;
    if (a->spf == SPF_RES_TEMPERROR && aligned(tree_walk, a->spf_domain, from, org, aspf))
        temp = true;
    for (size_t i = 0; i < a->nsigs; i++) {
        if (!aligned(tree_walk, a->sigs[i].domain, from, org, adkim))
            continue;
        pass |= a->sigs[i].result == DKIM_RES_PASS;
        o->dkim_aligned |= a->sigs[i].result == DKIM_RES_PASS;
        temp |= a->sigs[i].result == DKIM_RES_TEMPERROR;
    }

    o->p = (char)p;
    o->sp = (char)sp;
    o->policy = DMARC_POLICY_UNSET;
    if (l == REC_NONE) {
        /* No policy published: the domain has not asked for anything (SES: GRAY, NONE). */
        o->v = VERDICT_GRAY;
        o->r = DMARC_RES_NONE;
        o->policy = DMARC_POLICY_NONE;
        o->why = invalid ? invalid : "no DMARC record";
        return;
    }
    if (pass) {
        o->v = VERDICT_PASS;
        o->r = DMARC_RES_PASS;
        o->why = NULL;
        return;
    }
    if (temp) {
        o->v = VERDICT_PROCESSING_FAILED;
        o->r = DMARC_RES_TEMPERROR;
        o->why = "SPF or DKIM could not be checked";
        return;
    }
    int letter = at_org && sp ? sp : p;
    /* RFC 9989 np=: the policy for an author subdomain that does not exist at all */
    if (tree_walk && at_org && np && dns_query(from, 1 /* A */, NULL) == DNS_NXDOMAIN)
        letter = np;
    enum dmarc_policy pol = policy_of(letter);
    /* RFC 9989 drops pct= for t=y: a policy under test is applied one step lower. */
    if (tree_walk && testing)
        pol = pol == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
    /* pct=: the policy applies to that share of failing mail; the rest gets the next lower
     * policy (RFC 7489 §6.6.4). */
    if (!tree_walk && pct < 100 && pol != DMARC_POLICY_NONE &&
        (pct <= 0 || arc4random_uniform(100) >= (unsigned)pct))
        pol = pol == DMARC_POLICY_REJECT ? DMARC_POLICY_QUARANTINE : DMARC_POLICY_NONE;
    o->r = DMARC_RES_FAIL;
    o->policy = pol;
    o->v = pol == DMARC_POLICY_NONE ? VERDICT_GRAY : VERDICT_FAIL;
    o->why = NULL;
}

static int severity(enum verdict v)
{
    switch (v) {
    case VERDICT_FAIL:
        return 3;
    case VERDICT_PROCESSING_FAILED:
        return 2;
    case VERDICT_GRAY:
        return 1;
    default:
        return 0;
    }
}

enum verdict dmarc_check(const char *data, const struct hdr_list *h, struct auth_details *a,
                         bool tree_walk, enum dmarc_policy *policy)
{
    /* the tree walk needs no list */
    bool lib_ok = tree_walk || dmarc_org_domain_ready();
    *policy = DMARC_POLICY_UNSET;
    char **doms = NULL;
    size_t n = 0;
    bool ok = true;
    size_t nfrom = 0, mailboxes = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (!header_is(data, &h->f[i], "From"))
            continue;
        nfrom++;
        char *v = header_value(data, &h->f[i]);
        ok &= from_domains(v, &doms, &n, &mailboxes);
        free(v);
    }
    enum verdict out;
    if (!lib_ok || nfrom == 0 || !ok || n == 0) {
        /* §6.6.1: without one usable author domain DMARC cannot be applied. */
        a->dmarc = DMARC_RES_PERMERROR;
        a->dmarc_reason = xstrdup(!lib_ok      ? "public suffix list unavailable"
                                  : nfrom == 0 ? "no From header"
                                               : "malformed From header");
        if (n)
            a->from_domain = xstrdup(doms[0]);
        out = VERDICT_PROCESSING_FAILED;
    } else {
        /* One result per distinct author domain; the most severe wins (§6.6.1). */
        struct one_result best = {0};
        size_t best_i = 0;
        for (size_t i = 0; i < n; i++) {
            struct one_result o;
            judge_domain(tree_walk, doms[i], a, &o);
            if (i == 0 || severity(o.v) > severity(best.v) ||
                (o.v == best.v && o.policy > best.policy)) {
                free(best.record);
                free(best.record_domain);
                best = o;
                best_i = i;
            } else {
                free(o.record);
                free(o.record_domain);
            }
        }
        a->from_domain = xstrdup(doms[best_i]);
        a->dmarc = best.r;
        a->p = best.p;
        a->sp = best.sp;
        a->dmarc_reason = best.why ? xstrdup(best.why) : NULL;
        a->dmarc_record = best.record;
        a->dmarc_record_domain = best.record_domain;
        a->dmarc_dkim_aligned = best.dkim_aligned;
        a->dmarc_spf_aligned = best.spf_aligned;
        *policy = best.policy;
        out = best.v;
        if (out == VERDICT_PASS && (nfrom > 1 || mailboxes > 1)) {
            /* §6.6.1 leaves messages with several authors to the receiver; one forged author
             * beside an aligned one must not make the message pass. */
            a->dmarc = DMARC_RES_PERMERROR;
            free(a->dmarc_reason);
            a->dmarc_reason = xstrdup("several author addresses in From");
            out = VERDICT_PROCESSING_FAILED;
        }
        if (out != VERDICT_FAIL && out != VERDICT_GRAY)
            *policy = DMARC_POLICY_UNSET;
    }
    for (size_t i = 0; i < n; i++)
        free(doms[i]);
    free(doms);
    return out;
}

const char *dmarc_res_name(enum dmarc_res r)
{
    static const char *const names[] = {"none", "pass", "fail", "temperror", "permerror"};
    return (unsigned)r < sizeof names / sizeof *names ? names[r] : "none";
}
