/* The machine's durable-write limit, measured the way a Maildir delivery writes: for SECONDS,
 * each of THREADS threads writes a 10 KB file into DIR/tmp, fsyncs it, closes it and renames it
 * into DIR/new (with -d, also fsyncs DIR/new after the rename, as sluice does). Prints files per
 * second over all threads. Usage: fsync_rate [-d] DIR THREADS SECONDS */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static int dir_sync;
static double seconds;
static atomic_long total;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
    perror(path ? path : what);
    exit(1);
}

static void *run(void *arg)
{
    long id = (long)arg;
    char body[10240], tmp[4096], dst[4096], newdir[4096];
    memset(body, 'x', sizeof body);
    snprintf(newdir, sizeof newdir, "%s/new", dir);
    int dfd = open(newdir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        die("open", newdir);
    double end = now() + seconds;
    long n = 0;
    while (now() < end) {
        snprintf(tmp, sizeof tmp, "%s/tmp/%ld.%ld", dir, id, n);
        snprintf(dst, sizeof dst, "%s/new/%ld.%ld", dir, id, n);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
            die("open", tmp);
        if (write(fd, body, sizeof body) != (ssize_t)sizeof body)
            die("write", tmp);
        if (fsync(fd) < 0)
            die("fsync", tmp);
        close(fd);
        if (rename(tmp, dst) < 0)
            die("rename", dst);
        if (dir_sync && fsync(dfd) < 0)
            die("fsync", newdir);
        n++;
    }
    close(dfd);
    atomic_fetch_add(&total, n);
    return NULL;
}

int main(int argc, char **argv)
{
    int a = 1;
    if (argc > 1 && strcmp(argv[1], "-d") == 0) {
        dir_sync = 1;
        a++;
    }
    if (argc - a != 3) {
        fprintf(stderr, "usage: fsync_rate [-d] DIR THREADS SECONDS\n");
        return 2;
    }
    dir = argv[a];
    int threads = atoi(argv[a + 1]);
    seconds = atof(argv[a + 2]);
    char path[4096];
    snprintf(path, sizeof path, "%s/tmp", dir);
    mkdir(dir, 0700);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/new", dir);
    mkdir(path, 0700);
    pthread_t t[64];
    if (threads < 1 || threads > 64)
        return 2;
    double start = now();
    for (long i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, run, (void *)i);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    printf("%.0f\n", (double)atomic_load(&total) / (now() - start));
    return 0;
}
