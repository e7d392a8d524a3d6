/* `sluice dmarc-report -c FILE [--dry-run DIR] [--begin EPOCH] [--end EPOCH]`: builds the
 * DMARC aggregate reports (RFC 7489 Appendix C XML) for the last complete interval of
 * dmarc_reports { }, one per policy domain with a rua= in its record. With --dry-run they are
 * written to DIR as <receiver>!<policy-domain>!<begin>!<end>.xml (the §7.2.1.1 file name,
 * uncompressed); without, they are mailed (reports/dmarc_send.c) when send = true. */
#include "cli/commands.h"
#include "auth/dns.h"
#include "delivery/smtp_client.h"
#include "config/config.h"
#include "core/buf.h"
#include "reports/dmarc_run.h"

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

static void print_line(bool is_error, const char *line, void *ud)
{
    if (is_error)
        fprintf(stderr, "sluice: %s\n", line);
    else
        printf("%s\n", line);
}

int cmd_dmarc_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"dry-run", required_argument, NULL, 'd'},
        {"begin", required_argument, NULL, 'b'},  {"end", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *path = SLUICE_CONFIG_FILE, *dir = NULL;
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
    struct config *cfg = cli_load_config(path);
    if (!cfg)
        return 1;
    smtp_client_set_helo(cfg->server.hostname);
    int rc = 1;
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
    rc = dmarc_reports_run(cfg, begin, end, dir, false, print_line, NULL) == 0 ? 0 : 1;
done:
    dns_thread_cleanup(); /* the rua authorization lookups ran on this thread */
    config_release(cfg);
    return rc;
}
