/* sluice: the command-line entry point. Subcommands: serve, check, test, dmarc-report, spool. */
#include "cli/commands.h"
#include "auth/script_resolver.h"
#include "config/config.h"
#include "config/config_scan.h"
#include "config/config_warn.h"
#include "delivery/smtp_client.h"
#include "core/log.h"
#include "receiver/server.h"
#include "receiver/tls.h"
#include "rules/metrics.h"
#include "rules/reach.h"
#include "dmarc/dmarc_metrics.h"
#include "reports/dmarc_store.h"

#include <curl/curl.h>
#include <getopt.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve -c FILE   run the receiver in the foreground (SIGHUP reloads FILE,\n"
            "                  SIGTERM/SIGINT finish sessions in flight and exit)\n"
            "  check -c FILE   validate FILE and print a summary; exit 1 with FILE:LINE on error\n"
            "  test -c FILE --from ADDR --to ADDR [...] MESSAGE\n"
            "                  dry-run a message through the rules and print a trace\n"
            "                  (sluice test --help for the options)\n"
            "  dmarc-report -c FILE [--dry-run DIR]\n"
            "                  send the DMARC aggregate reports of the last interval, or\n"
            "                  write them to DIR (sluice dmarc-report --help for the options)\n"
            "  spool list|show ID|retry ID|--all|drop ID [-c FILE] [--json]\n"
            "                  the post-acceptance jobs waiting in the spool: list, show, run\n"
            "                  now, remove (also while serve runs; sluice spool --help)\n"
            "\n"
            "options:\n"
            "  -c, --config FILE   the Lua config (default: /etc/sluice/sluice.lua)\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n");
}

static const char *parse_config_opt(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = SLUICE_CONFIG_FILE;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            path = optarg;
        } else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice: unexpected argument '%s'\n", argv[optind]);
        exit(2);
    }
    return path;
}

/* "FILE:LINE: warning: ..." like the config's other warnings; LINE 0 means server { }. */
static void print_warning(void *arg, int line, const char *text)
{
    const struct config *cfg = arg;
    fprintf(stderr, "%s:%d: warning: %s\n", cfg->path, line ? line : cfg->server.line, text);
}

struct config *cli_load_config(const char *path)
{
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof err);
    if (!cfg)
        fprintf(stderr, "sluice: %s\n", err);
    return cfg;
}

static int cmd_check(int argc, char **argv)
{
    const char *path = parse_config_opt(argc, argv);
    char err[1024];
    struct config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = 0;
    if (cfg->server.tls_cert) {
        char why[512];
        SSL_CTX *ctx = tls_server_ctx(cfg->server.tls_cert, cfg->server.tls_key, why, sizeof why);
        if (!ctx) {
            fprintf(stderr, "%s:%d: %s\n", path, cfg->server.line, why);
            rc = 1;
        }
        SSL_CTX_free(ctx);
    }
    if (rc == 0) {
        config_describe(cfg, stdout);
        config_scan_warn(cfg, stderr);
        config_warn(cfg, stderr);
        reach_check(cfg->sets, cfg->nsets, cfg->server.domains, cfg->server.ndomains,
                    cfg->server.undelivered, print_warning, cfg);
    }
    config_release(cfg);
    metrics_shutdown();
    return rc;
}

static int cmd_serve(int argc, char **argv)
{
    struct config *cfg = cli_load_config(parse_config_opt(argc, argv));
    if (!cfg)
        return 1;
    log_set_json(cfg->server.log_json);
    log_set_level((enum log_level)cfg->server.log_level);
    smtp_client_set_helo(cfg->server.hostname);
    script_resolver_install();
    char err[1024];
    struct server *srv = server_new(cfg, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    server_run(srv);
    server_free(srv);
    metrics_shutdown();
    dmarc_metrics_shutdown();
    dmarc_store_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    g_mime_init();
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any worker thread exists */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0 || strcmp(cmd, "version") == 0) {
        printf("sluice %s\n", SLUICE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "test") == 0)
        return cmd_test(argc - 1, argv + 1);
    if (strcmp(cmd, "dmarc-report") == 0)
        return cmd_dmarc_report(argc - 1, argv + 1);
    if (strcmp(cmd, "spool") == 0)
        return cmd_spool(argc - 1, argv + 1);
    if (strcmp(cmd, "spf-query") == 0) /* hidden: for tests and debugging */
        return cmd_spf_query(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
