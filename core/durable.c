/* Durable directories and files (see durable.h for the rule they follow). */
#include "core/durable.h"
#include "core/fsync_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdirs(const char *path, mode_t mode, bool exact, gid_t gid)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    while (slash && slash > parent && slash[1] == '\0') {
        *slash = '\0';
        slash = strrchr(parent, '/');
    }
    if (slash && slash != parent) {
        *slash = '\0';
        int rc = mkdirs(parent, mode, exact, gid);
        if (rc < 0)
            return rc;
    } else {
        snprintf(parent, sizeof parent, "%s", slash == parent ? "/" : ".");
    }
    if (mkdir(path, mode) < 0) {
        if (errno != EEXIST)
            return -errno;
    } else if ((exact && chmod(path, mode) < 0) ||
               (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0)) {
        return -errno;
    }
    /* Also after EEXIST: whoever made it may not have synced the parent yet. */
    return fsync_dir(parent);
}

int durable_mkdirs(const char *path, mode_t mode)
{
    return mkdirs(path, mode, false, (gid_t)-1);
}

int durable_mkdirs_owned(const char *path, mode_t mode, gid_t gid)
{
    return mkdirs(path, mode, true, gid);
}

static int write_all(int fd, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        off += (size_t)w;
    }
    return 0;
}

int durable_write_file(const char *dir, const char *name, const void *data, size_t len,
                       mode_t dir_mode, mode_t file_mode, char *err, size_t errlen)
{
    int rc = durable_mkdirs(dir, dir_mode);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    /* A temporary name of its own per write, so two threads writing the same name never share
     * one, and short, so it fits NAME_MAX whatever name is. The leading dot hides it from the
     * readers of dir. */
    static atomic_uint seq;
    char tmp[PATH_MAX], final[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/.tmp-%ld-%u", dir, (long)getpid(), atomic_fetch_add(&seq, 1));
    snprintf(final, sizeof final, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, file_mode);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return rc;
    }
    rc = write_all(fd, data, len);
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, final) < 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(dir);
    if (rc < 0) {
        snprintf(err, errlen, "cannot write %s: %s", final, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}
