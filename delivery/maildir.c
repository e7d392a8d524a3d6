/* Maildir writer (https://cr.yp.to/proto/maildir.html) with fsync discipline: file data,
 * then the directory entry, before anything is acknowledged. */
#include "delivery/maildir.h"
#include "delivery/dir_sync.h"
#include "core/durable.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

static int ensure_maildir(const char *root, const struct maildir_perms *perms)
{
    static const char *sub[] = {"tmp", "new", "cur"};
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/new", root);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", root, sub[i]);
        int rc = durable_mkdirs_owned(p, perms->dir_mode, perms->gid);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static char host[64];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static void init_host(void)
{
    char h[64] = "localhost";
    gethostname(h, sizeof h - 1);
    /* '/' and ':' are not allowed in Maildir names (ancient rule; Dovecot follows it). */
    for (char *c = h; *c; c++)
        if (*c == '/' || *c == ':')
            *c = '_';
    memcpy(host, h, sizeof host);
}

static void unique_name(char *out, size_t len, size_t size)
{
    static atomic_uint seq;
    pthread_once(&host_once, init_host);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(out, len, "%lld.M%06ldP%dQ%u.%s,S=%zu", (long long)tv.tv_sec, (long)tv.tv_usec,
             (int)getpid(), atomic_fetch_add(&seq, 1), host, size);
}

static int write_all(int fd, const struct buf *head, const struct buf *body)
{
    struct iovec iov[2] = {{head->data, head->len}, {body->data, body->len}};
    int cnt = 2;
    struct iovec *v = iov;
    while (cnt > 0) {
        ssize_t w = writev(fd, v, cnt);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        size_t left = (size_t)w;
        while (cnt > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

int maildir_stage(struct maildir_batch *b, const char *root, const struct maildir_perms *perms,
                  const struct buf *head, const struct buf *body, int tag, char *err, size_t errlen)
{
    int rc = ensure_maildir(root, perms);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create maildir %s: %s", root, strerror(-rc));
        return rc;
    }
    char name[256];
    unique_name(name, sizeof name, head->len + body->len);
    char *tmp = xasprintf("%s/tmp/%s", root, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    /* Exactly the configured mode (open's is less the umask) and group, before the data, so
     * the file is never readable by more than asked. */
    if (fchmod(fd, perms->file_mode) < 0 ||
        (perms->gid != (gid_t)-1 && fchown(fd, (uid_t)-1, perms->gid) < 0)) {
        rc = -errno;
        snprintf(err, errlen, "cannot set the mode or group of %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return rc;
    }
    rc = write_all(fd, head, body);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
        unlink(tmp);
        free(tmp);
        return rc;
    }
    b->items = xgrow(b->items, sizeof *b->items, &b->cap, b->n);
    b->items[b->n++] = (struct maildir_staged){
        .tmp_path = tmp,
        .new_path = xasprintf("%s/new/%s", root, name),
        .new_dir = xasprintf("%s/new", root),
        .tag = tag,
    };
    return 0;
}

static void staged_free(struct maildir_staged *s)
{
    free(s->tmp_path);
    free(s->new_path);
    free(s->new_dir);
}

int maildir_commit(struct maildir_batch *b, char *err, size_t errlen)
{
    size_t done = 0;
    int rc = 0;
    for (; done < b->n; done++) {
        if (rename(b->items[done].tmp_path, b->items[done].new_path) < 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot move %s into new/: %s", b->items[done].tmp_path,
                     strerror(errno));
            break;
        }
    }
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(b->items[i].new_dir, b->items[j].new_dir) == 0;
        /* Shared with concurrent deliveries into the same new/ (group commit). */
        if (!seen && (rc = dir_sync(b->items[i].new_dir)) < 0)
            snprintf(err, errlen, "cannot sync %s: %s", b->items[i].new_dir, strerror(-rc));
    }
    if (rc < 0) {
        /* Take back what was moved: the sender will retry after our 4xx. */
        for (size_t i = 0; i < done; i++)
            unlink(b->items[i].new_path);
        for (size_t i = done; i < b->n; i++)
            unlink(b->items[i].tmp_path);
    }
    for (size_t i = 0; i < b->n; i++)
        staged_free(&b->items[i]);
    b->n = 0;
    return rc;
}

void maildir_discard_tag(struct maildir_batch *b, int tag)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i].tag == tag) {
            unlink(b->items[i].tmp_path);
            staged_free(&b->items[i]);
        } else {
            b->items[w++] = b->items[i];
        }
    }
    b->n = w;
}

void maildir_abort(struct maildir_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        unlink(b->items[i].tmp_path);
        staged_free(&b->items[i]);
    }
    b->n = 0;
}

void maildir_batch_free(struct maildir_batch *b)
{
    maildir_abort(b);
    free(b->items);
    b->items = NULL;
    b->cap = 0;
}
