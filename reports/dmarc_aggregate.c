#include "reports/dmarc_aggregate.h"
#include "config/config.h"
#include "core/xalloc.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void dmarc_report_id(const char *domain, time_t begin, time_t end, const char *node, char *out,
                     size_t len)
{
    snprintf(out, len, "%s.%lld.%lld@%s", domain, (long long)begin, (long long)end, node);
}

char *dmarc_record_tag(const char *record, const char *tag)
{
    size_t tl = strlen(tag);
    const char *p = record;
    while (p && *p) {
        p += strspn(p, " \t;");
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq) {
            size_t kl = (size_t)(eq - p);
            while (kl && (p[kl - 1] == ' ' || p[kl - 1] == '\t'))
                kl--;
            if (kl == tl && strncasecmp(p, tag, tl) == 0) {
                const char *v = eq + 1;
                size_t vl = n - (size_t)(v - p);
                while (vl && (*v == ' ' || *v == '\t'))
                    v++, vl--;
                while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                    vl--;
                return xstrndup(v, vl);
            }
        }
        p = end;
    }
    return NULL;
}

/* The latest record published by domain in the period (caller frees), or NULL. */
static char *latest_record(sqlite3 *db, const char *domain, time_t begin, time_t end)
{
    sqlite3_stmt *st;
    char *rec = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT record FROM evaluation WHERE policy_domain=? AND at>=? AND "
                           "at<? ORDER BY at DESC, rowid DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, begin);
    sqlite3_bind_int64(st, 3, end);
    if (sqlite3_step(st) == SQLITE_ROW)
        rec = xstrdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rec;
}

long dmarc_aggregate_domains(sqlite3 *db, time_t begin, time_t end, char ***out, char *err,
                             size_t errlen)
{
    sqlite3_stmt *st;
    *out = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT DISTINCT policy_domain FROM evaluation WHERE at>=? AND at<? "
                           "ORDER BY policy_domain",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_int64(st, 1, begin);
    sqlite3_bind_int64(st, 2, end);
    size_t n = 0, cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 0);
        char *rec = latest_record(db, d, begin, end);
        char *rua = rec ? dmarc_record_tag(rec, "rua") : NULL;
        if (rua && *rua) {
            *out = xgrow(*out, sizeof **out, &cap, n);
            (*out)[n++] = xstrdup(d);
        }
        free(rua);
        free(rec);
    }
    sqlite3_finalize(st);
    return (long)n;
}

static void put_text(struct buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            buf_puts(b, "&lt;");
            break;
        case '>':
            buf_puts(b, "&gt;");
            break;
        case '&':
            buf_puts(b, "&amp;");
            break;
        case '"':
            buf_puts(b, "&quot;");
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                buf_append(b, s, 1);
        }
    }
}

static void element(struct buf *b, const char *indent, const char *name, const char *value)
{
    buf_printf(b, "%s<%s>", indent, name);
    put_text(b, value);
    buf_printf(b, "</%s>\n", name);
}

/* p=/sp= as the report spells them; anything unknown is "none". */
static const char *policy_word(const char *v)
{
    if (v && strcasecmp(v, "reject") == 0)
        return "reject";
    if (v && strcasecmp(v, "quarantine") == 0)
        return "quarantine";
    return "none";
}

static void policy_published(struct buf *b, const char *domain, const char *rec)
{
    char *p = dmarc_record_tag(rec, "p"), *sp = dmarc_record_tag(rec, "sp");
    char *adkim = dmarc_record_tag(rec, "adkim"), *aspf = dmarc_record_tag(rec, "aspf");
    char *pct = dmarc_record_tag(rec, "pct"), *fo = dmarc_record_tag(rec, "fo");
    buf_puts(b, "  <policy_published>\n");
    element(b, "    ", "domain", domain);
    element(b, "    ", "adkim", adkim && strcasecmp(adkim, "s") == 0 ? "s" : "r");
    element(b, "    ", "aspf", aspf && strcasecmp(aspf, "s") == 0 ? "s" : "r");
    element(b, "    ", "p", policy_word(p));
    element(b, "    ", "sp", policy_word(sp ? sp : p));
    int n = pct ? atoi(pct) : 100;
    buf_printf(b, "    <pct>%d</pct>\n", n < 0 ? 0 : n > 100 ? 100 : n);
    element(b, "    ", "fo", fo ? fo : "0");
    buf_puts(b, "  </policy_published>\n");
    free(p);
    free(sp);
    free(adkim);
    free(aspf);
    free(pct);
    free(fo);
}

static void dkim_results(struct buf *b, const char *lines)
{
    const char *p = lines;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[600], dom[256], sel[256], res[32];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), p);
        if (sscanf(line, "%255s %255s %31s", dom, sel, res) == 3) {
            buf_puts(b, "      <dkim>\n");
            element(b, "        ", "domain", strcmp(dom, "-") == 0 ? "" : dom);
            if (strcmp(sel, "-") != 0)
                element(b, "        ", "selector", sel);
            element(b, "        ", "result", res);
            buf_puts(b, "      </dkim>\n");
        }
        p = nl ? nl + 1 : NULL;
    }
}

long dmarc_aggregate_build(sqlite3 *db, const struct dmarc_reports_cfg *rc, const char *node,
                           const char *domain, time_t begin, time_t end, struct buf *xml,
                           char **rua, char *err, size_t errlen)
{
    char *rec = latest_record(db, domain, begin, end);
    if (!rec) {
        snprintf(err, errlen, "no evaluations for %s in the period", domain);
        return -1;
    }
    if (rua)
        *rua = dmarc_record_tag(rec, "rua");
    buf_puts(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feedback>\n"
                  "  <version>1.0</version>\n  <report_metadata>\n");
    element(xml, "    ", "org_name", rc->org_name);
    element(xml, "    ", "email", rc->email);
    char id[512];
    dmarc_report_id(domain, begin, end, node, id, sizeof id);
    element(xml, "    ", "report_id", id);
    buf_printf(xml,
               "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n"
               "    </date_range>\n  </report_metadata>\n",
               (long long)begin, (long long)end - 1);
    policy_published(xml, domain, rec);
    free(rec);

    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(
            db,
            "SELECT source_ip, disposition, dkim, spf, envelope_to, envelope_from, header_from, "
            "spf_domain, spf_scope, spf_result, dkim_results, COUNT(*) FROM evaluation "
            "WHERE policy_domain=? AND at>=? AND at<? "
            "GROUP BY 1,2,3,4,5,6,7,8,9,10,11 ORDER BY 12 DESC, 1",
            -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, begin);
    sqlite3_bind_int64(st, 3, end);
    long rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *c[11];
        for (int i = 0; i < 11; i++)
            c[i] = (const char *)sqlite3_column_text(st, i);
        rows++;
        buf_puts(xml, "  <record>\n    <row>\n");
        element(xml, "      ", "source_ip", c[0]);
        buf_printf(xml, "      <count>%lld</count>\n", (long long)sqlite3_column_int64(st, 11));
        buf_puts(xml, "      <policy_evaluated>\n");
        element(xml, "        ", "disposition", c[1]);
        element(xml, "        ", "dkim", c[2]);
        element(xml, "        ", "spf", c[3]);
        buf_puts(xml, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
        if (c[4] && *c[4])
            element(xml, "      ", "envelope_to", c[4]);
        element(xml, "      ", "envelope_from", c[5]);
        element(xml, "      ", "header_from", c[6]);
        buf_puts(xml, "    </identifiers>\n    <auth_results>\n");
        dkim_results(xml, c[10]);
        buf_puts(xml, "      <spf>\n");
        element(xml, "        ", "domain", c[7]);
        element(xml, "        ", "scope", c[8]);
        element(xml, "        ", "result", c[9]);
        buf_puts(xml, "      </spf>\n    </auth_results>\n  </record>\n");
    }
    sqlite3_finalize(st);
    buf_puts(xml, "</feedback>\n");
    return rows;
}
