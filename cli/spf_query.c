/* `sluice spf-query -c FILE --ip IP [--helo NAME] --from ADDR`: a hidden debugging command that
 * runs the SPF check alone through the config's dns { } settings and prints the result name
 * and the reason, so SPF can be tested with any client address (the receiver only ever sees
 * loopback clients in tests). Exit 0 whatever the result; 2 on usage errors.
 *
 * `sluice spf-query -c FILE --batch` reads queries from stdin, one a line as
 * "IP<TAB>HELO<TAB>MAIL FROM" (empty MAIL FROM for <>), and prints one result line for each, in
 * order: the RFC 7208 suite runs its 203 cases through one process this way. Each query gets
 * its own DNS lookup budget, as each message does in the receiver. */
#include "auth/auth.h"
#include "auth/dns.h"
#include "cli/commands.h"
#include "config/config.h"
#include "rules/metrics.h"

#include <getopt.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One result line; control characters of the reason (it may quote a hostile record) become '?'
 * so that each query answers with exactly one line. */
static void run_one(const struct config *cfg, const char *ip, const char *helo, const char *from)
{
    struct auth_details a = {0};
    dns_begin(&cfg->dns);
    spf_check(ip, helo, from, &a);
    printf("%s ", spf_res_name(a.spf));
    for (const char *p = a.spf_reason ? a.spf_reason : ""; *p; p++)
        putchar(iscntrl((unsigned char)*p) ? '?' : *p);
    putchar('\n');
    fflush(stdout);
    free(a.spf_identity);
    free(a.spf_domain);
    free(a.spf_reason);
}

static int run_batch(const struct config *cfg)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        char *helo = strchr(line, '\t');
        char *from = helo ? strchr(helo + 1, '\t') : NULL;
        if (!from) {
            printf("usage-error expected IP<TAB>HELO<TAB>MAIL FROM\n");
            fflush(stdout);
            continue;
        }
        *helo++ = '\0';
        *from++ = '\0';
        run_one(cfg, line, helo, from);
    }
    free(line);
    return 0;
}

int cmd_spf_query(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"ip", required_argument, NULL, 'i'},
        {"helo", required_argument, NULL, 'H'},   {"from", required_argument, NULL, 'f'},
        {"batch", no_argument, NULL, 'b'},        {NULL, 0, NULL, 0}};
    const char *path = SLUICE_CONFIG_FILE, *ip = NULL, *helo = NULL, *from = NULL;
    int c, batch = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 'i')
            ip = optarg;
        else if (c == 'H')
            helo = optarg;
        else if (c == 'f')
            from = optarg;
        else if (c == 'b')
            batch = 1;
        else
            return 2;
    }
    if (!batch && (!ip || !from)) {
        fprintf(stderr, "usage: sluice spf-query -c FILE --ip IP [--helo NAME] --from ADDR\n"
                        "       sluice spf-query -c FILE --batch < queries\n");
        return 2;
    }
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (batch)
        run_batch(cfg);
    else
        run_one(cfg, ip, helo, from);
    dns_thread_cleanup();
    config_release(cfg);
    metrics_shutdown();
    return 0;
}
