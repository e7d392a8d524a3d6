/* `sluice spf-query -c FILE --ip IP [--helo NAME] --from ADDR`: a hidden debugging command that
 * runs the SPF check alone through the config's dns { } settings and prints the result name
 * and the reason, so SPF can be tested with any client address (the receiver only ever sees
 * loopback clients in tests). Exit 0 whatever the result; 2 on usage errors. */
#include "auth/auth.h"
#include "auth/dns.h"
#include "cli/commands.h"
#include "config/config.h"
#include "rules/metrics.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_spf_query(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"ip", required_argument, NULL, 'i'},
                                         {"helo", required_argument, NULL, 'H'},
                                         {"from", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    const char *path = "/etc/sluice/sluice.lua", *ip = NULL, *helo = NULL, *from = NULL;
    int c;
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
        else
            return 2;
    }
    if (!ip || !from) {
        fprintf(stderr, "usage: sluice spf-query -c FILE --ip IP [--helo NAME] --from ADDR\n");
        return 2;
    }
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct auth_details a = {0};
    dns_begin(cfg);
    spf_check(ip, helo, from, &a);
    printf("%s %s\n", spf_res_name(a.spf), a.spf_reason ? a.spf_reason : "");
    free(a.spf_identity);
    free(a.spf_domain);
    free(a.spf_reason);
    dns_thread_cleanup();
    config_release(cfg);
    metrics_shutdown();
    return 0;
}
