/* How `sluice spool retry|drop` and a running `sluice serve` share the spool without ever both
 * running a job, and without a dropped job running after the CLI said it was dropped.
 *
 * serve holds an exclusive flock on <data_dir>/spool/lock for as long as it runs (the kernel
 * releases it when the process dies, so a crash leaves no stale lock). The CLI takes the same
 * lock without waiting:
 *  - when it gets it, no server runs and none can start meanwhile (serve waits for the lock at
 *    start): the CLI changes the job files itself, under the lock;
 *  - when it does not, it never touches a job file: it writes a request into
 *    <data_dir>/spool/control/ (everything in the file's name, so that a server running as
 *    another user needs only the directory), and serve, which polls that directory on its
 *    event loop, applies it to the jobs it holds in memory (the only copy that decides what
 *    runs) and writes the outcome beside it. A job whose attempt is in flight is dropped when
 *    the attempt ends (it is not run again), and only then is the outcome written. The CLI
 *    waits for the outcome; should the server exit first, the CLI gets the lock and applies
 *    the request itself, and a request left over is applied by the next serve at start, before
 *    any job runs. */
#ifndef SLUICE_SPOOL_CONTROL_H
#define SLUICE_SPOOL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

/* Takes the spool lock, creating <data_dir>/spool/ and the lock file as needed. wait_ms 0
 * tries once. Returns the lock's fd (close it to release), -EWOULDBLOCK when another process
 * holds it, or another negative errno with the reason in err. */
int spool_lock(const char *data_dir, int wait_ms, char *err, size_t errlen);

/* True when id can be a job id ("<qid>-<n>": letters, digits, '-' and '_' only). */
bool spool_id_valid(const char *id);

enum spool_op { SPOOL_OP_RETRY, SPOOL_OP_DROP };

struct spool_request {
    char name[160]; /* the request file's name in the control directory */
    char token[64]; /* unique per request: the outcome file is <token>.done */
    enum spool_op op;
    char id[64]; /* the job's id, or "*" for every job (retry only) */
};

/* Writes a request for op on job id ("*": all) and fills *req. Returns 0 or a negative errno. */
int spool_request_write(const char *data_dir, enum spool_op op, const char *id,
                        struct spool_request *req, char *err, size_t errlen);
/* The requests waiting in the control directory, oldest first (caller frees the array). */
size_t spool_requests(const char *data_dir, struct spool_request **out);
/* Records the outcome of req (ok, and one line of text for the operator) and removes the
 * request file: the outcome is written first, so a reader sees one or the other. */
void spool_request_done(const char *data_dir, const struct spool_request *req, bool ok,
                        const char *text);
/* 1 with the outcome (removing its file) when req has one, 0 when it has none yet, -1 when the
 * request is gone without an outcome. */
int spool_request_result(const char *data_dir, const struct spool_request *req, bool *ok,
                         char *text, size_t len);
/* Removes the request file (the CLI applying its own request after serve exited). Returns 0,
 * or -1 when it was gone (taken by a server). */
int spool_request_take(const char *data_dir, const struct spool_request *req);

#endif
