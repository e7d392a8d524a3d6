/* dir_sync from many threads at once: every call returns success for a real directory, an
 * error for a missing one, and the table of directories in use empties again (a second round
 * works the same). The durability argument itself is in dir_sync.c. */
#include "check.h"
#include "delivery/dir_sync.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dirs[3][256];
static int results[48];

static void *worker(void *arg)
{
    long i = (long)arg;
    for (int k = 0; k < 50 && results[i] == 0; k++)
        results[i] = dir_sync(dirs[i % 3]);
    return NULL;
}

int main(void)
{
    char base[] = "/tmp/sluice-dirsync-XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    for (int i = 0; i < 2; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/d%d", base, i);
        mkdir(dirs[i], 0700);
    }
    snprintf(dirs[2], sizeof dirs[2], "%s/missing", base);
    for (int round = 0; round < 2; round++) {
        pthread_t t[48];
        for (long i = 0; i < 48; i++) {
            results[i] = 0;
            pthread_create(&t[i], NULL, worker, (void *)i);
        }
        for (int i = 0; i < 48; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 48; i++)
            CHECK(i % 3 == 2 ? results[i] < 0 : results[i] == 0);
    }
    for (int i = 0; i < 2; i++)
        CHECK(rmdir(dirs[i]) == 0);
    CHECK(rmdir(base) == 0);
    return CHECK_DONE();
}
