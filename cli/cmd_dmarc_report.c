/* `sluice dmarc-report -c FILE [--dry-run DIR] [--begin EPOCH] [--end EPOCH]`: builds the
 * DMARC aggregate reports (RFC 7489 Appendix C XML) for the last complete interval of
 * dmarc_reports { }, one per policy domain with a rua= in its record. With --dry-run they are
 * written to DIR as <receiver>!<policy-domain>!<begin>!<end>.xml (the §7.2.1.1 file name,
 * uncompressed); without, they are mailed (reports/dmarc_send.c) when send = true. */
#include "cli/commands.h"
#include "auth/dns.h"
#include "config/config.h"
#include "core/buf.h"
#include "reports/dmarc_aggregate.h"
#include "reports/dmarc_send.h"
#include "reports/dmarc_store.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice dmarc-report -c FILE [--dry-run DIR] [--begin EPOCH] [--end EPOCH]\n"
            "  sends the DMARC aggregate reports of the last complete interval (or of\n"
            "  [begin, end)) to each domain's rua= (dmarc_reports { send = true }), or\n"
            "  with --dry-run writes them as XML files into DIR\n");
}

static int parse_epoch(const char *s, time_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < 0)
        return -1;
    *out = (time_t)v;
    return 0;
}

static int write_file(const char *path, const struct buf *b)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = fwrite(b->data, 1, b->len, f);
    int rc = fclose(f);
    return n == b->len && rc == 0 ? 0 : -1;
}

int cmd_dmarc_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"dry-run", required_argument, NULL, 'd'},
        {"begin", required_argument, NULL, 'b'},  {"end", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *path = "/etc/sluice/sluice.lua", *dir = NULL;
    time_t begin = 0, end = 0;
    int have_begin = 0, have_end = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else if (c == 'd') {
            dir = optarg;
        } else if ((c == 'b' || c == 'e') && parse_epoch(optarg, c == 'b' ? &begin : &end) == 0) {
            *(c == 'b' ? &have_begin : &have_end) = 1;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    int rc = 1;
    sqlite3 *db = NULL;
    char **domains = NULL;
    long n = 0;
    const struct dmarc_reports_cfg *dr = &cfg->dmarc_reports;
    if (!dr->line) {
        fprintf(stderr, "sluice: %s has no dmarc_reports { } block\n", path);
        goto done;
    }
    /* The last complete interval, aligned to UTC multiples of it (00:00 for 24h). */
    if (!have_end)
        end = time(NULL) / dr->interval_s * dr->interval_s;
    if (!have_begin)
        begin = end - dr->interval_s;
    if (begin >= end) {
        fprintf(stderr, "sluice: dmarc-report: --begin must be before --end\n");
        goto done;
    }
    if (!dir && !dr->send) {
        fprintf(stderr,
                "sluice: dmarc_reports { send = false } in %s: use --dry-run DIR, or set "
                "send = true\n",
                path);
        goto done;
    }
    if (dir && mkdir(dir, 0750) < 0 && errno != EEXIST) {
        fprintf(stderr, "sluice: cannot create %s: %s\n", dir, strerror(errno));
        goto done;
    }
    db = dmarc_store_open(cfg->server.data_dir, err, sizeof err);
    if (!db) {
        fprintf(stderr, "sluice: %s\n", err);
        goto done;
    }
    n = dmarc_aggregate_domains(db, begin, end, &domains, err, sizeof err);
    if (n < 0) {
        fprintf(stderr, "sluice: %s\n", err);
        goto done;
    }
    const char *at = strrchr(dr->email, '@');
    const char *receiver = at ? at + 1 : dr->email;
    rc = 0;
    for (long i = 0; i < n; i++) {
        struct buf xml = {0};
        char *rua = NULL;
        long rows = dmarc_aggregate_build(db, dr, receiver, domains[i], begin, end, &xml, &rua, err,
                                          sizeof err);
        char file[PATH_MAX];
        snprintf(file, sizeof file, "%s/%s!%s!%lld!%lld.xml", dir, receiver, domains[i],
                 (long long)begin, (long long)end - 1);
        if (rows < 0) {
            fprintf(stderr, "sluice: %s: %s\n", domains[i], err);
            rc = 1;
        } else if (!dir) {
            struct buf skipped = {0};
            int sent = dmarc_report_send(cfg, receiver, domains[i], begin, end, &xml,
                                         rua ? rua : "", &skipped, err, sizeof err);
            if (skipped.len)
                fprintf(stderr, "sluice: %s: not sent to %s", domains[i], buf_cstr(&skipped));
            if (sent < 0) {
                fprintf(stderr, "sluice: %s: %s\n", domains[i], err);
                rc = 1;
            } else {
                printf("%s: %ld rows, sent to %d of rua=%s\n", domains[i], rows, sent,
                       rua ? rua : "");
            }
            buf_free(&skipped);
        } else if (strchr(domains[i], '/') || write_file(file, &xml) < 0) {
            fprintf(stderr, "sluice: cannot write %s: %s\n", file, strerror(errno));
            rc = 1;
        } else {
            printf("%s: %ld rows, rua=%s\n", file, rows, rua ? rua : "");
        }
        free(rua);
        buf_free(&xml);
    }
    if (n == 0)
        printf("no domain with a rua= had evaluations in [%lld, %lld)\n", (long long)begin,
               (long long)end);
done:
    for (long i = 0; i < n; i++)
        free(domains[i]);
    free(domains);
    sqlite3_close(db);
    dns_thread_cleanup(); /* the rua authorization lookups ran on this thread */
    config_release(cfg);
    return rc;
}
