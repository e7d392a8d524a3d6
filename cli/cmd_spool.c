/* `sluice spool list | show ID | retry ID|--all | drop ID [-c FILE] [--json]`: the queue of
 * post-acceptance jobs, for an operator. list and show only read the job files (each is
 * replaced whole by a rename, never seen half-written); retry and drop go through the spool
 * lock and, while serve runs, through serve itself (spool/spool_control.h explains why). */
#include "cli/commands.h"
#include "config/config.h"
#include "core/headers.h"
#include "rules/metrics.h"
#include "spool/spool.h"
#include "spool/spool_control.h"
#include "spool/spool_direct.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long retry/drop wait for a running serve to answer: a drop whose attempt is in flight
 * waits for the attempt, which an action's own timeout bounds. */
#define ANSWER_WAIT_MS 120000

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice spool list [-c FILE] [--json]\n"
                 "       sluice spool show ID [-c FILE] [--json]\n"
                 "       sluice spool retry ID|--all [-c FILE]\n"
                 "       sluice spool drop ID [-c FILE]\n"
                 "  the post-acceptance jobs waiting in <data_dir>/spool: list them, show one\n"
                 "  (secrets masked), run one or all now, or remove one for good; retry and\n"
                 "  drop work while sluice serve runs, through it\n");
}

static const char *state_name(enum spool_file st)
{
    switch (st) {
    case SPOOL_FILE_OK:
        return "waiting";
    case SPOOL_FILE_HELD_VERSION:
        return "held-unknown-version";
    case SPOOL_FILE_HELD_ACTION:
        return "held-bad-action";
    default:
        return "held-unreadable";
    }
}

struct entry {
    char name[300];
    char path[PATH_MAX + 300];
    enum spool_file state;
    char why[256];
    struct spool_job *job; /* NULL for an unreadable file */
};

static int by_age(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    time_t cx = x->job && !x->job->held ? x->job->created : 0;
    time_t cy = y->job && !y->job->held ? y->job->created : 0;
    return cx != cy ? (cx < cy ? -1 : 1) : strcmp(x->name, y->name);
}

/* Every job file (only = NULL) or the one of job id, oldest first; caller frees. */
static size_t read_entries(const char *data_dir, const char *only, struct entry **out)
{
    char msg_dir[PATH_MAX], job_dir[PATH_MAX];
    spool_dirs(data_dir, msg_dir, job_dir, sizeof msg_dir);
    *out = NULL;
    DIR *d = opendir(job_dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 5 || len >= sizeof(*out)->name ||
            strcmp(e->d_name + len - 4, ".job") != 0)
            continue;
        if (only && (len - 4 != strlen(only) || strncmp(e->d_name, only, len - 4) != 0))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            *out = realloc(*out, cap * sizeof **out);
            if (!*out)
                abort();
        }
        struct entry *en = &(*out)[n++];
        memset(en, 0, sizeof *en);
        snprintf(en->name, sizeof en->name, "%s", e->d_name);
        snprintf(en->path, sizeof en->path, "%s/%s", job_dir, e->d_name);
        en->state = spool_read_job(en->path, en->name, &en->job, en->why, sizeof en->why);
    }
    closedir(d);
    if (n > 1) /* qsort wants an array, even of nothing */
        qsort(*out, n, sizeof **out, by_age);
    return n;
}

static void free_entries(struct entry *es, size_t n)
{
    for (size_t i = 0; i < n; i++)
        spool_job_free(es[i].job);
    free(es);
}

static void entry_id(const struct entry *e, char *id, size_t len)
{
    snprintf(id, len, "%.*s", (int)(strlen(e->name) - 4), e->name);
}

/* "3d4h", "5m10s": how long ago or how far ahead. */
static void span(long long s, char *out, size_t len)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        snprintf(out, len, "%lldd%lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        snprintf(out, len, "%lldh%lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        snprintf(out, len, "%lldm%llds", s / 60, s % 60);
    else
        snprintf(out, len, "%llds", s);
}

static json_t *entry_json(const struct entry *e, time_t now)
{
    char id[300];
    entry_id(e, id, sizeof id);
    json_t *o = json_pack("{s:s, s:s}", "id", id, "state", state_name(e->state));
    const struct spool_job *j = e->job;
    if (!j || j->held) {
        json_object_set_new(o, "qid", j ? json_string(j->env.qid) : json_null());
        json_object_set_new(o, "reason", json_string(e->why));
        return o;
    }
    json_t *rcpts = json_array();
    for (size_t i = 0; i < j->env.nrcpts; i++)
        json_array_append_new(rcpts, json_string(j->env.rcpts[i]));
    json_object_set_new(o, "qid", json_string(j->env.qid));
    json_object_set_new(o, "action", json_string(j->action_type));
    json_object_set_new(o, "rule_set", json_string(j->rule_set));
    json_object_set_new(o, "rule", json_string(j->rule));
    json_object_set_new(o, "mail_from", json_string(j->env.mail_from));
    json_object_set_new(o, "recipients", rcpts);
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "created", json_integer((json_int_t)j->created));
    json_object_set_new(o, "age_s", json_integer((json_int_t)(now - j->created)));
    json_object_set_new(o, "next_attempt", json_integer((json_int_t)j->next_attempt));
    json_object_set_new(
        o, "next_in_s",
        json_integer((json_int_t)(j->next_attempt > now ? j->next_attempt - now : 0)));
    json_object_set_new(o, "last_attempt",
                        j->last_error ? json_integer((json_int_t)j->last_attempt) : json_null());
    json_object_set_new(o, "last_error", j->last_error ? json_string(j->last_error) : json_null());
    return o;
}

static void print_entry(const struct entry *e, time_t now)
{
    char id[300], age[32], next[40];
    entry_id(e, id, sizeof id);
    const struct spool_job *j = e->job;
    if (!j || j->held) {
        printf("%s  %s\n    %s\n", id, state_name(e->state), e->why);
        return;
    }
    span(now - j->created, age, sizeof age);
    if (j->next_attempt <= now)
        snprintf(next, sizeof next, "now");
    else {
        char in[32];
        span(j->next_attempt - now, in, sizeof in);
        snprintf(next, sizeof next, "in %s", in);
    }
    printf("%s  %s  %s  %s/%s  attempts %d  age %s  next %s\n", id, state_name(e->state),
           j->action_type, j->rule_set, j->rule, j->attempts, age, next);
    printf("    from <%s> to", j->env.mail_from);
    for (size_t i = 0; i < j->env.nrcpts; i++)
        printf(" %s%s", j->env.rcpts[i], i + 1 < j->env.nrcpts ? "," : "");
    printf("\n");
    if (j->last_error)
        printf("    last error: %s\n", j->last_error);
}

static int do_list(const char *data_dir, bool json)
{
    struct entry *es;
    size_t n = read_entries(data_dir, NULL, &es);
    time_t now = time(NULL);
    if (json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, entry_json(&es[i], now));
        char *text = json_dumps(a, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(a);
    } else if (n == 0) {
        printf("no jobs\n");
    } else {
        for (size_t i = 0; i < n; i++)
            print_entry(&es[i], now);
        printf("%zu job%s\n", n, n == 1 ? "" : "s");
    }
    free_entries(es, n);
    return 0;
}

/* A parameter that is a credential: shown as "***" (names such as secret_key_env hold only
 * the name of a variable and stay). */
static bool secret_key(const char *k)
{
    static const char *const names[] = {"secret", "password", "passwd", "token", "api_key"};
    size_t len = strlen(k);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t nl = strlen(names[i]);
        if (strcmp(k, names[i]) == 0 ||
            (len > nl && k[len - nl - 1] == '_' && strcmp(k + len - nl, names[i]) == 0))
            return true;
    }
    return false;
}

static void mask(json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x)
        {
            if (secret_key(k) && json_is_string(x) && json_string_length(x))
                json_object_set_new(v, k, json_string("***"));
            else
                mask(x);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) mask(x);
    }
}

/* The message's header block (the trace headers sluice added first), or NULL. Caller frees. */
static char *message_headers(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20;
    char *b = malloc(cap + 1);
    if (!b)
        abort();
    size_t n = fread(b, 1, cap, f);
    fclose(f);
    b[n] = '\0';
    size_t h = headers_length(b, n);
    b[h ? h : n] = '\0';
    return b;
}

static int do_show(const char *data_dir, const char *id, bool json)
{
    struct entry *es;
    size_t n = read_entries(data_dir, id, &es);
    if (n == 0) {
        fprintf(stderr, "sluice: no job %s in %s/spool/jobs\n", id, data_dir);
        free(es);
        return 1;
    }
    const struct entry *e = &es[0];
    json_error_t jerr;
    json_t *doc = json_load_file(e->path, JSON_ALLOW_NUL, &jerr);
    if (doc)
        mask(doc);
    char msg[PATH_MAX + 300];
    if (e->job)
        snprintf(msg, sizeof msg, "%s", e->job->msg_path);
    else
        msg[0] = '\0';
    char *headers = msg[0] ? message_headers(msg) : NULL;
    if (json) {
        json_t *o = entry_json(e, time(NULL));
        json_object_set_new(o, "job", doc ? doc : json_null());
        json_object_set_new(o, "message_file", msg[0] ? json_string(msg) : json_null());
        json_object_set_new(o, "message_headers", headers ? json_string(headers) : json_null());
        char *text = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(o);
    } else {
        print_entry(e, time(NULL));
        if (doc) {
            char *text = json_dumps(doc, JSON_INDENT(2));
            printf("\njob file %s (secrets masked):\n%s\n", e->path, text);
            free(text);
            json_decref(doc);
        } else {
            printf("\njob file %s is not JSON: %s\n", e->path, jerr.text);
        }
        if (headers)
            printf("\nmessage %s, its headers:\n%s", msg, headers);
        else if (msg[0])
            printf("\nmessage %s: cannot be read\n", msg);
    }
    free(headers);
    free_entries(es, n);
    return 0;
}

static int apply_direct(const char *data_dir, enum spool_op op, const char *id)
{
    char text[1024];
    int rc = op == SPOOL_OP_DROP ? spool_drop_direct(data_dir, id, text, sizeof text)
                                 : spool_retry_direct(data_dir, id, text, sizeof text);
    fprintf(rc == 0 ? stdout : stderr, "%s%s\n", rc == 0 ? "" : "sluice: ", text);
    return rc == 0 ? 0 : 1;
}

/* retry and drop: directly under the spool lock when no serve runs, else as a request that the
 * running serve applies (and, should it exit before it does, directly after all). */
static int do_request(const char *data_dir, enum spool_op op, const char *id)
{
    char err[512], text[1024], path[PATH_MAX + 100];
    /* Nothing to do, and nothing to create (a spool made by root would lock serve out). */
    snprintf(path, sizeof path, "%s/spool/jobs", data_dir);
    if (strcmp(id, "*") == 0 && access(path, F_OK) < 0) {
        printf("no jobs\n");
        return 0;
    }
    snprintf(path, sizeof path, "%s/spool/jobs/%s.job", data_dir, id);
    if (strcmp(id, "*") != 0 && access(path, F_OK) < 0) {
        fprintf(stderr, "sluice: no job %s in %s/spool/jobs\n", id, data_dir);
        return 1;
    }
    int fd = spool_lock(data_dir, 0, err, sizeof err);
    if (fd >= 0) {
        int rc = apply_direct(data_dir, op, id);
        close(fd);
        return rc;
    }
    if (fd != -EWOULDBLOCK) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    struct spool_request req;
    if (spool_request_write(data_dir, op, id, &req, err, sizeof err) < 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    for (int waited = 0; waited < ANSWER_WAIT_MS; waited += 50) {
        bool ok;
        int got = spool_request_result(data_dir, &req, &ok, text, sizeof text);
        if (got == 1) {
            fprintf(ok ? stdout : stderr, "%s%s\n", ok ? "" : "sluice: ", text);
            return ok ? 0 : 1;
        }
        if (got < 0) {
            fprintf(stderr, "sluice: the request %s was taken without an answer\n", req.name);
            return 1;
        }
        fd = spool_lock(data_dir, 0, err, sizeof err);
        if (fd >= 0) {
            /* serve exited before it applied the request: ours to apply, unless it took it. */
            int rc = spool_request_take(data_dir, &req) == 0 ? apply_direct(data_dir, op, id) : -1;
            close(fd);
            if (rc >= 0)
                return rc;
            continue;
        }
        usleep(50 * 1000);
    }
    fprintf(stderr,
            "sluice: sluice serve has not answered within %d s; the request %s/spool/control/%s "
            "stays and is applied when it does (or at its next start)\n",
            ANSWER_WAIT_MS / 1000, data_dir, req.name);
    return 1;
}

int cmd_spool(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"all", no_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = SLUICE_CONFIG_FILE;
    bool json = false, all = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else if (c == 'j') {
            json = true;
        } else if (c == 'a') {
            all = true;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    const char *sub = optind < argc ? argv[optind++] : NULL;
    const char *id = optind < argc ? argv[optind++] : NULL;
    bool list = sub && strcmp(sub, "list") == 0, show = sub && strcmp(sub, "show") == 0;
    bool retry = sub && strcmp(sub, "retry") == 0, drop = sub && strcmp(sub, "drop") == 0;
    bool want_id = show || drop || (retry && !all);
    if (!(list || show || retry || drop) || optind < argc || (want_id != (id != NULL)) ||
        (all && !retry) || (json && !(list || show))) {
        usage(stderr);
        return 2;
    }
    if (id && !spool_id_valid(id)) {
        fprintf(stderr, "sluice: '%s' is not a job id (as sluice spool list shows them)\n", id);
        return 1;
    }
    struct config *cfg = cli_load_config(path);
    if (!cfg)
        return 1;
    const char *dir = cfg->server.data_dir;
    int rc;
    if (list)
        rc = do_list(dir, json);
    else if (show)
        rc = do_show(dir, id, json);
    else
        rc = do_request(dir, drop ? SPOOL_OP_DROP : SPOOL_OP_RETRY, all ? "*" : id);
    config_release(cfg);
    metrics_shutdown();
    return rc;
}
