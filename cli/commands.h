/* Subcommands that live in their own files. */
#ifndef SLUICE_CLI_COMMANDS_H
#define SLUICE_CLI_COMMANDS_H

struct config;

/* The config at path for a command that runs with it (serve, dmarc-report, spool), or NULL
 * after printing "sluice: FILE:LINE: why" to standard error. The caller releases it. */
struct config *cli_load_config(const char *path);

/* hidden: SPF alone for explicit inputs (cli/spf_query.c) */
int cmd_spf_query(int argc, char **argv);
/* `sluice test`: dry-run a message through the rules (cli/cmd_test.c) */
int cmd_test(int argc, char **argv);
/* `sluice dmarc-report`: DMARC aggregate reports (cli/cmd_dmarc_report.c) */
int cmd_dmarc_report(int argc, char **argv);
/* `sluice spool`: list, show, retry and drop post-acceptance jobs (cli/cmd_spool.c) */
int cmd_spool(int argc, char **argv);

#endif
