/* Receipt actions. Each file in actions/ fills one struct action_type (Redis-module style);
 * registry.c lists them. A configured action is a type plus its parsed, immutable state. */
#ifndef SLUICE_ACTION_H
#define SLUICE_ACTION_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "delivery/lmtp_client.h" /* struct rcpt_reply */
#include "delivery/plan.h"        /* struct rcpt_outcome */
#include "spool/spool.h"

struct lua_State;
struct message;
struct maildir_batch;
struct action_stats;
struct action;
struct eval_state;

enum action_status {
    ACTION_OK,
    ACTION_FAILED,        /* ctx->error says why */
    ACTION_STOP_RULE,     /* end this rule's actions, go on with the next rule */
    ACTION_STOP_RULE_SET, /* end the whole chain */
};

struct action_ctx {
    struct message *msg;
    const char *rule_name; /* the rule's name (for templates, logs and spooled jobs) */
    const size_t *rcpts;   /* indices into msg->env.rcpts that the rule matched (not refused or
                              dropped earlier in the chain) */
    size_t nrcpts;
    struct maildir_batch *batch;   /* staged deliveries, committed after the chain succeeds */
    struct rcpt_outcome *outcomes; /* one per msg->env.rcpts entry */
    struct eval_state *eval;       /* the evaluator's, for action_replace_rcpts */
    int dry_run;                   /* `sluice test`: say what would be done, change nothing */
    /* When the evaluation is watched (`sluice test`): where action_note sends its notes. */
    void (*note)(void *arg, const char *text);
    void *note_arg;
    char error[256];
    int sys_errno; /* errno behind an ACTION_FAILED, 0 when not a system error */
};

/* Refuses every recipient the rule matched with reply (complete SMTP reply text, no CRLF);
 * copies already staged for them are taken back. */
void action_refuse_rcpts(struct action_ctx *ctx, const char *reply, const char *sender);
/* Refuses one recipient (an index into msg->env.rcpts) the same way. */
void action_refuse_rcpt(struct action_ctx *ctx, size_t rcpt, const char *reply, const char *sender);
/* Accepts the rule's recipients silently: nothing more is delivered to them. */
void action_drop_rcpts(struct action_ctx *ctx);
/* Replaces the rule's recipients with addrs (SES Mail Manager ReplaceRecipient): the old ones
 * get nothing more, later actions and rules see the new ones. */
void action_replace_rcpts(struct action_ctx *ctx, char *const *addrs, size_t n);
/* Marks the recipients in ctx settled when a is a delivering action (called before it runs). */
void action_settle_rcpts(const struct action *a, struct action_ctx *ctx);
/* Runs a nested list of actions (e.g. bounce_on_dmarc_fail's quarantine) with ctx. */
enum action_status action_run_list(struct action *const *list, size_t n, struct action_ctx *ctx);

struct action_type {
    const char *name;
    /* The action settles the recipients it runs for: delivers (store, relay, s3, lmtp, lua,
     * dmarc_report_ingest), refuses (bounce), hands them on (replace_recipient) or discards
     * them by choice (drop). A recipient no such action ran for is undelivered (rules/
     * undelivered.h); notifications (webhook), header edits and stop do not count. */
    bool delivers;
    /* Parses the config table at stack index idx into *state (owned by the action, freed with
     * free_state). Returns -1 with a message in err on any config error. */
    int (*parse)(struct lua_State *L, int idx, void **state, char *err, size_t errlen);
    /* Optional: checks at RCPT time that the action can handle rcpt for rule; returns NULL or
     * a complete SMTP reply refusing the recipient. */
    const char *(*check_rcpt)(const void *state, const char *rule, const char *rcpt);
    enum action_status (*run)(const void *state, struct action_ctx *ctx);
    /* One-line description of the parameters for `sluice check`. */
    void (*describe)(const void *state, struct buf *out);
    void (*free_state)(void *state);
    /* Post-acceptance actions (webhook, relay, S3, ...): performs the action once for job, on a
     * worker thread, from the spool (or inline when on_failure = "tempfail"). run is then
     * unused. Returns 0, -1 (retry later) or ACTION_DELIVER_REJECTED (final: the receiver
     * refused it for good), with the reason in err. */
    int (*deliver)(const void *state, struct spool_job *job, char *err, size_t errlen);
    /* Optional: the type this configuration really is (a lua action with invocation = "async"
     * becomes a post-acceptance action). Called once after parse. */
    const struct action_type *(*variant)(const void *state);
    /* Optional, post-acceptance actions: what deliver would send for job (`sluice test`). */
    void (*explain)(const void *state, struct spool_job *job, struct buf *out);
    /* Optional, for post-acceptance actions that answer per recipient (LMTP): performs the
     * action once for job and fills replies[i] ("250 ...", "552 5.2.2 ...", "451 ...") for
     * job->rcpts[i], with what went wrong with the whole attempt in err. In the session the
     * evaluator uses it instead of deliver, so that each recipient gets its own answer. */
    void (*deliver_each)(const void *state, struct spool_job *job, struct rcpt_reply *replies,
                         char *err, size_t errlen);
    /* Optional, for `sluice check`: writes into why (and returns 1) what will make the action
     * fail when it runs although the config is valid (an unset credential variable). */
    int (*warn)(const void *state, char *why, size_t whylen);
    /* Optional: on_failure when the config gives none (ON_FAILURE_DEFAULT: tempfail in the
     * session, retry after acceptance). */
    enum on_failure default_on_failure;
};

/* Tells the evaluation's observer, when there is one, what an action did or would do. */
void action_note(struct action_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ACTION_DELIVER_REJECTED (-2)
#define EXPIRE_AFTER_DEFAULT_MS (4LL * 3600 * 1000) /* SES retries for four hours */

struct action {
    const struct action_type *type;
    void *state;
    int line;
    struct action_stats *stats; /* owned by the metrics registry */
    enum on_failure on_failure;
    long long expire_after_ms;
    bool expire_given;
    /* Post-acceptance actions only (NULL otherwise): the config table the type parsed, as
     * canonical JSON (sorted keys, on_failure and expire_after taken out), and the absolute
     * path of the config file it came from (paths in it are relative to that). A spooled job
     * carries both, so it can rebuild this action whatever the config in force says. */
    char *params;
    char *config_file;
};

/* Reads on_failure and expire_after from the config table at idx into a, then removes them
 * from the table (the type's parser must not see them). Returns -1 with the reason in err. */
int action_policy_parse(struct lua_State *L, int idx, struct action *a, char *err, size_t errlen);
/* Checks the policy against the action's (final) type: "retry" and expire_after need a
 * post-acceptance action. */
int action_policy_check(const struct action *a, char *err, size_t errlen);
/* on_failure with the default resolved: tempfail in the session, retry after acceptance. */
enum on_failure action_effective_policy(const struct action *a);

/* NULL-terminated list of every action type. */
extern const struct action_type *const action_types[];
const struct action_type *action_type_find(const char *name);
void action_free(struct action *a);

#endif
