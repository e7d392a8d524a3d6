/* durable_mkdirs and durable_write_file: what they create, and that they fsync what the crash
 * rule of core/durable.h asks for (the parent of every directory they create, the file, and the
 * directory it is renamed in). fsync is wrapped here to record the path of each fsync'd
 * descriptor before the real system call runs. */
#include "check.h"
#include "core/durable.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char synced[64][PATH_MAX];
static int nsynced;

int fsync(int fd)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (nsynced < 64) {
        ssize_t n = readlink(link, synced[nsynced], PATH_MAX - 1);
        synced[nsynced][n > 0 ? n : 0] = '\0';
        nsynced++;
    }
    return (int)syscall(SYS_fsync, fd);
}

static int was_synced(const char *path)
{
    for (int i = 0; i < nsynced; i++)
        if (strcmp(synced[i], path) == 0)
            return 1;
    return 0;
}

static int synced_prefix(const char *prefix)
{
    for (int i = 0; i < nsynced; i++)
        if (strncmp(synced[i], prefix, strlen(prefix)) == 0)
            return 1;
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

static void read_file(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

int main(void)
{
    char tmpl[] = "/tmp/sluice-durable-XXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    char base[PATH_MAX], p[PATH_MAX + 64], q[PATH_MAX + 64], text[64], err[256];
    CHECK(realpath(tmpl, base) != NULL); /* /proc reports resolved paths */

    /* Every created directory is made durable in its parent. */
    snprintf(p, sizeof p, "%s/a/b/c", base);
    CHECK_INT(durable_mkdirs(p, 0700), 0);
    CHECK(is_dir(p));
    CHECK(was_synced(base));
    snprintf(q, sizeof q, "%s/a", base);
    CHECK(was_synced(q));
    snprintf(q, sizeof q, "%s/a/b", base);
    CHECK(was_synced(q));
    /* Trailing slashes name the same directory; existing ones are left alone. */
    nsynced = 0;
    snprintf(p, sizeof p, "%s/a/b/c/", base);
    CHECK_INT(durable_mkdirs(p, 0700), 0);
    CHECK_INT(nsynced, 0);

    /* A file in the way. */
    snprintf(p, sizeof p, "%s/f", base);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    snprintf(p, sizeof p, "%s/f/x", base);
    CHECK_INT(durable_mkdirs(p, 0700), -ENOTDIR);

    /* A file in new directories: the file, its directory and each new directory's parent. */
    nsynced = 0;
    snprintf(p, sizeof p, "%s/s/t", base);
    CHECK_INT(durable_write_file(p, "one.job", "hello", 5, 0700, 0600, err, sizeof err), 0);
    snprintf(q, sizeof q, "%s/s/t/one.job", base);
    read_file(q, text, sizeof text);
    CHECK(strcmp(text, "hello") == 0);
    struct stat st;
    CHECK(stat(q, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(was_synced(base));
    snprintf(q, sizeof q, "%s/s", base);
    CHECK(was_synced(q));
    CHECK(was_synced(p));
    snprintf(q, sizeof q, "%s/s/t/.tmp-", base);
    CHECK(synced_prefix(q)); /* the data, under its temporary name */
    CHECK_INT(entries(p), 1);

    /* Replacing it leaves the new content and no temporary file. */
    CHECK_INT(durable_write_file(p, "one.job", "bye", 3, 0700, 0600, err, sizeof err), 0);
    snprintf(q, sizeof q, "%s/s/t/one.job", base);
    read_file(q, text, sizeof text);
    CHECK(strcmp(text, "bye") == 0);
    CHECK_INT(entries(p), 1);

    /* A name as long as a file name may be: the temporary name must fit too. */
    char longname[256];
    memset(longname, 'n', 255);
    longname[255] = '\0';
    CHECK_INT(durable_write_file(p, longname, "x", 1, 0700, 0600, err, sizeof err), 0);
    CHECK_INT(entries(p), 2);

    /* A directory that cannot be made: the error says which. */
    snprintf(p, sizeof p, "%s/f/y", base);
    err[0] = '\0';
    CHECK_INT(durable_write_file(p, "two.job", "x", 1, 0700, 0600, err, sizeof err), -ENOTDIR);
    CHECK(strstr(err, "cannot create") != NULL && strstr(err, "/f/y") != NULL);

    /* Owned: exactly the mode whatever the umask, the group on every new directory, existing
     * ones left alone, each new one synced in its parent. */
    mode_t old_umask = umask(077);
    nsynced = 0;
    snprintf(p, sizeof p, "%s/o/p", base);
    CHECK_INT(durable_mkdirs_owned(p, 0750, getegid()), 0);
    umask(old_umask);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0750 && st.st_gid == getegid());
    snprintf(q, sizeof q, "%s/o", base);
    CHECK(stat(q, &st) == 0 && (st.st_mode & 07777) == 0750);
    CHECK(was_synced(base) && was_synced(q));
    snprintf(q, sizeof q, "%s/a", base);
    CHECK_INT(durable_mkdirs_owned(q, 0755, (gid_t)-1), 0);
    CHECK(stat(q, &st) == 0 && (st.st_mode & 07777) == 0700);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    CHECK(system(cmd) == 0);
    return CHECK_DONE();
}
