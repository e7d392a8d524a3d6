/* Judging one message: run the rule chain of a rule set (SES semantics: every applying rule
 * runs, in order, until a stop) and return what it decided as a plan (delivery/plan.h). The
 * plan is carried out by delivery_commit (delivery/commit.h). Runs on a worker thread. */
#ifndef SLUICE_EVAL_H
#define SLUICE_EVAL_H

#include <stddef.h>

#include "delivery/plan.h"
#include "rules/undelivered.h"

struct rule_set;
struct action;
struct message;
/* What the evaluator needs from the server settings (filled by the caller from struct server_cfg,
 * so that rules/ does not depend on config/). Borrowed: the strings belong to the caller. */
struct rules_settings {
    const char *hostname;                /* this MX's name, for DSNs */
    const char *bounce_relay;            /* "host:port" DSNs are sent through; NULL: none sent */
    enum undelivered_policy undelivered; /* for recipients no delivering action ran for */
};

/* Fills plan (caller frees with plan_free, after delivery_commit). Copies are staged, jobs and
 * the DSN only planned: nothing is committed, spooled or taken back here. */
void rules_evaluate(const struct rule_set *rs, struct message *m, const struct rules_settings *sc,
                    struct plan *plan);

/* After delivery_commit: counts the in-session successes plan holds when the message was kept
 * (not failed), then forgets them (rules/metrics.h). */
void rules_count_kept(struct plan *plan);

/* Watches an evaluation (`sluice test`'s trace); every callback is optional. Rules are named by
 * their position in the rule set. */
struct eval_observer {
    void *arg;
    /* The rule does not apply (or is not reached): why, as text. */
    void (*rule_skipped)(void *arg, size_t rule, const char *why);
    /* The rule applies to rcpts (indices into m->env.rcpts). */
    void (*rule_applied)(void *arg, size_t rule, const struct message *m, const size_t *rcpts,
                         size_t n);
    /* An action of the rule last applied starts, notes what it does or would do, ends with
     * result ("ok", "failed", "stop_rule", "stop_rule_set") and, when failed, error. */
    void (*action_started)(void *arg, const struct action *a);
    void (*action_note)(void *arg, const char *text);
    void (*action_done)(void *arg, const struct action *a, const char *result, const char *error);
};

/* For `sluice test`: dry_run says what would be done and changes nothing (no files, no
 * network); deliver_inline runs post-acceptance actions now instead of planning jobs. */
struct eval_opts {
    int dry_run;
    int deliver_inline;
    const struct eval_observer *observer; /* may be NULL */
};
void rules_evaluate_opts(const struct rule_set *rs, struct message *m,
                         const struct rules_settings *sc, const struct eval_opts *opts,
                         struct plan *plan);

#endif
