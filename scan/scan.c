/* When to scan, the verdicts, and the X-Sluice-* headers. The scanners run one after the other
 * within one budget (timeout_ms), so an outage costs a message at most timeout_ms. */
#include "scan/scan.h"
#include "core/headers.h"
#include "core/log.h"
#include "core/message.h"
#include "rules/rcpt_index.h"
#include "rules/ruleset.h"
#include "scan/scanners.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const our_headers[] = {"X-Sluice-Spam-Verdict", "X-Sluice-Spam-Score",
                                          "X-Sluice-Virus-Verdict", NULL};

/* True when an enabled rule with scan = true matches one of m's recipients. Its when/unless
 * conditions cannot decide it: they may ask for the very verdicts the scan gives. */
static bool scan_wanted(const struct rule_set *rs, const struct message *m)
{
    if (!rs || !rs->index)
        return false;
    uint32_t *hits = NULL;
    size_t cap = 0;
    bool want = false;
    for (size_t i = 0; i < m->env.nrcpts && !want; i++) {
        size_t n = rcpt_index_lookup(rs->index, m->env.rcpts[i], &hits, &cap);
        for (size_t k = 0; k < n && !want; k++) {
            const struct rule *r = rs->rules[hits[k]];
            want = r->enabled && r->scan;
        }
    }
    free(hits);
    return want;
}

/* "score / threshold (SYM(2.50), ...)", folded so that no header line grows past 78. */
static void score_header(const struct spam_result *s, struct buf *out)
{
    buf_printf(out, "%.2f / %.2f", s->score, s->required);
    if (!s->symbols.len)
        return;
    size_t col = strlen("X-Sluice-Spam-Score: ") + out->len;
    const char *p = s->symbols.data, *end = p + s->symbols.len;
    buf_puts(out, " (");
    col += 2;
    for (bool first = true; p < end; first = false) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) + 1 : (size_t)(end - p);
        if (!first && col + 1 + n > 76) {
            buf_puts(out, "\r\n\t"); /* fold: no trailing white space before it */
            col = 1;
        } else if (!first) {
            buf_puts(out, " ");
            col++;
        }
        buf_append(out, p, n);
        col += n;
        p += n;
        while (p < end && *p == ' ')
            p++;
    }
    buf_puts(out, ")");
}

void scan_message(const struct scan_cfg *sc, const struct rule_set *rs, struct message *m)
{
    for (size_t i = 0; our_headers[i]; i++)
        headers_remove_named(&m->body, our_headers[i]);
    if (!scan_wanted(rs, m))
        return;

    struct spam_result spam = {.verdict = VERDICT_PROCESSING_FAILED};
    struct virus_result virus = {.verdict = VERDICT_PROCESSING_FAILED};
    bool too_big = (long long)m->body.len > sc->max_size;
    long long deadline = scan_now_ms() + sc->timeout_ms;
    if (!sc->rspamd)
        snprintf(spam.error, sizeof spam.error, "no rspamd configured in scan { }");
    else if (too_big)
        snprintf(spam.error, sizeof spam.error, "message over scan.max_size (%lld bytes)",
                 sc->max_size);
    else
        rspamd_check(sc->rspamd, m, deadline, &spam);
    if (!sc->clamd)
        snprintf(virus.error, sizeof virus.error, "no clamd configured in scan { }");
    else if (too_big)
        snprintf(virus.error, sizeof virus.error, "message over scan.max_size (%lld bytes)",
                 sc->max_size);
    else
        clamd_check(sc->clamd, m->body.data, m->body.len, deadline, &virus);

    m->env.verdicts.spam = spam.verdict;
    m->env.verdicts.virus = virus.verdict;
    snprintf(m->virus_name, sizeof m->virus_name, "%s",
             virus.verdict == VERDICT_FAIL ? virus.name : "");

    /* Prepended newest on top: added bottom-up so they read Spam-Verdict, Score, Virus. */
    struct buf v = {0};
    if (virus.verdict == VERDICT_FAIL)
        buf_printf(&v, "FAIL (%s)", virus.name);
    else
        buf_puts(&v, verdict_name(virus.verdict));
    message_add_header(m, "X-Sluice-Virus-Verdict", buf_cstr(&v));
    buf_reset(&v);
    if (spam.action[0]) {
        score_header(&spam, &v);
        message_add_header(m, "X-Sluice-Spam-Score", buf_cstr(&v));
    }
    message_add_header(m, "X-Sluice-Spam-Verdict", verdict_name(spam.verdict));
    buf_free(&v);

    char score[48] = "";
    if (spam.action[0])
        snprintf(score, sizeof score, "%.2f/%.2f", spam.score, spam.required);
    struct log_kv kv[] = {
        {"qid", m->env.qid},
        {"spam", verdict_name(spam.verdict)},
        {"action", spam.action[0] ? spam.action : NULL},
        {"score", score[0] ? score : NULL},
        {"virus", verdict_name(virus.verdict)},
        {"signature", virus.name[0] ? virus.name : NULL},
        {"spam_error", spam.error[0] ? spam.error : NULL},
        {"virus_error", virus.error[0] ? virus.error : NULL},
    };
    bool failed =
        spam.verdict == VERDICT_PROCESSING_FAILED || virus.verdict == VERDICT_PROCESSING_FAILED;
    log_event(failed ? LOG_WARN : LOG_INFO, "scan", kv, sizeof kv / sizeof kv[0]);
    buf_free(&spam.symbols);
}
