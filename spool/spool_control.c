/* The spool lock and the control directory's request and outcome files (see spool_control.h).
 * A request is an empty file named "<token>.<op>.<id>.req"; its outcome is "<token>.done",
 * JSON {"ok": bool, "text": string}. Both are written under a temporary dot-name and renamed,
 * so a reader never sees half of one. */
#include "spool/spool_control.h"
#include "core/durable.h"
#include "core/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void control_dir(const char *data_dir, char *out, size_t len)
{
    snprintf(out, len, "%s/spool/control", data_dir);
}

int spool_lock(const char *data_dir, int wait_ms, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/spool", data_dir);
    int rc = durable_mkdirs(dir, 0700);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    snprintf(path, sizeof path, "%s/lock", dir);
    /* Readable by all: it holds nothing, and a CLI run by root must not lock a server out. */
    int fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    for (int waited = 0;; waited += 50) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK || waited >= wait_ms)
            break;
        usleep(50 * 1000);
    }
    rc = -errno;
    snprintf(err, errlen, "%s is locked by another process (a running sluice serve)", path);
    close(fd);
    return rc == -EWOULDBLOCK ? -EWOULDBLOCK : rc;
}

bool spool_id_valid(const char *id)
{
    if (!id[0] || strlen(id) >= 64)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            return false;
    return true;
}

static const char *op_name(enum spool_op op)
{
    return op == SPOOL_OP_DROP ? "drop" : "retry";
}

int spool_request_write(const char *data_dir, enum spool_op op, const char *id,
                        struct spool_request *req, char *err, size_t errlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(req, 0, sizeof *req);
    /* Time first, so that the name orders requests as they were made. */
    snprintf(req->token, sizeof req->token, "%lld%09ld-%ld", (long long)ts.tv_sec, ts.tv_nsec,
             (long)getpid());
    req->op = op;
    snprintf(req->id, sizeof req->id, "%s", id);
    snprintf(req->name, sizeof req->name, "%s.%s.%s.req", req->token, op_name(op), id);
    char dir[PATH_MAX], spool[PATH_MAX];
    control_dir(data_dir, dir, sizeof dir);
    int rc = durable_mkdirs(dir, 0700);
    /* A CLI run as root makes the directory serve's, whose user must list and write it. */
    struct stat owner, st;
    snprintf(spool, sizeof spool, "%s/spool", data_dir);
    if (rc == 0 && geteuid() == 0 && stat(spool, &owner) == 0 && stat(dir, &st) == 0 &&
        st.st_uid != owner.st_uid && chown(dir, owner.st_uid, owner.st_gid) < 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    return durable_write_file(dir, req->name, "", 0, 0700, 0644, err, errlen);
}

/* "<token>.<op>.<id>.req" into *r; -1 for any other name. */
static int parse_name(const char *name, struct spool_request *r)
{
    size_t len = strlen(name);
    if (name[0] == '.' || len < 5 || len >= sizeof r->name || strcmp(name + len - 4, ".req") != 0)
        return -1;
    char copy[sizeof r->name];
    snprintf(copy, sizeof copy, "%.*s", (int)(len - 4), name);
    char *op = strchr(copy, '.');
    char *id = op ? strchr(op + 1, '.') : NULL;
    if (!id)
        return -1;
    *op++ = '\0';
    *id++ = '\0';
    memset(r, 0, sizeof *r);
    if (strcmp(op, "drop") == 0)
        r->op = SPOOL_OP_DROP;
    else if (strcmp(op, "retry") == 0)
        r->op = SPOOL_OP_RETRY;
    else
        return -1;
    if (!(spool_id_valid(id) || (r->op == SPOOL_OP_RETRY && strcmp(id, "*") == 0)) ||
        strlen(copy) >= sizeof r->token)
        return -1;
    snprintf(r->name, sizeof r->name, "%s", name);
    memcpy(r->token, copy, strlen(copy) + 1); /* fits: checked above */
    snprintf(r->id, sizeof r->id, "%s", id);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct spool_request *)a)->name, ((const struct spool_request *)b)->name);
}

size_t spool_requests(const char *data_dir, struct spool_request **out)
{
    char dir[PATH_MAX];
    control_dir(data_dir, dir, sizeof dir);
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct spool_request r;
        if (parse_name(e->d_name, &r) < 0)
            continue;
        *out = xgrow(*out, sizeof **out, &cap, n);
        (*out)[n++] = r;
    }
    closedir(d);
    if (n > 1)
        qsort(*out, n, sizeof **out, by_name);
    return n;
}

void spool_request_done(const char *data_dir, const struct spool_request *req, bool ok,
                        const char *text)
{
    char dir[PATH_MAX], name[96], path[PATH_MAX + 200], err[256];
    control_dir(data_dir, dir, sizeof dir);
    json_t *o = json_pack("{s:b, s:s}", "ok", ok, "text", text);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    snprintf(name, sizeof name, "%s.done", req->token);
    /* 0644: the outcome holds no secret, and the CLI may run as another user (root). */
    if (body)
        durable_write_file(dir, name, body, strlen(body), 0700, 0644, err, sizeof err);
    free(body);
    snprintf(path, sizeof path, "%s/%s", dir, req->name);
    unlink(path);
}

int spool_request_result(const char *data_dir, const struct spool_request *req, bool *ok,
                         char *text, size_t len)
{
    char dir[PATH_MAX], path[PATH_MAX + 200];
    control_dir(data_dir, dir, sizeof dir);
    /* The request first: the server writes the outcome before it removes the request, so a
     * request already gone here has its outcome in place below. */
    snprintf(path, sizeof path, "%s/%s", dir, req->name);
    bool pending = access(path, F_OK) == 0;
    snprintf(path, sizeof path, "%s/%s.done", dir, req->token);
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (!o)
        return pending ? 0 : -1;
    *ok = json_is_true(json_object_get(o, "ok"));
    const char *t = json_string_value(json_object_get(o, "text"));
    snprintf(text, len, "%s", t ? t : "");
    json_decref(o);
    unlink(path);
    return 1;
}

int spool_request_take(const char *data_dir, const struct spool_request *req)
{
    char dir[PATH_MAX], path[PATH_MAX + 200];
    control_dir(data_dir, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/%s", dir, req->name);
    return unlink(path) == 0 ? 0 : -1;
}
