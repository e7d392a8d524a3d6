/* The two scanner clients behind scan_message(), each one round trip per message. Internal to
 * scan/. Both are thread-safe; deadline is a CLOCK_MONOTONIC time in milliseconds. */
#ifndef SLUICE_SCANNERS_H
#define SLUICE_SCANNERS_H

#include "core/buf.h"
#include "core/verdict.h"

struct message;

struct spam_result {
    enum verdict verdict;
    double score, required;
    char action[32];
    struct buf symbols; /* "NAME(2.50), NAME(1.00)": the highest-scoring symbols */
    char error[256];    /* why PROCESSING_FAILED */
};

struct virus_result {
    enum verdict verdict;
    char name[128];  /* the signature on FAIL */
    char error[256]; /* why PROCESSING_FAILED */
};

long long scan_now_ms(void);
/* POST url/checkv2 with the envelope in rspamd's request headers. The caller frees
 * out->symbols. */
void rspamd_check(const char *url, const struct message *m, long long deadline,
                  struct spam_result *out);
/* clamd INSTREAM over "ip:port" or "unix:/path". */
void clamd_check(const char *addr, const char *data, size_t len, long long deadline,
                 struct virus_result *out);
/* Maps rspamd's action to a verdict: no action/greylist PASS, add header/rewrite subject/soft
 * reject GRAY, reject FAIL, anything else PROCESSING_FAILED. */
enum verdict rspamd_action_verdict(const char *action);

#endif
