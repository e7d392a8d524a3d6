/* Subcommands that live in their own files. */
#ifndef SLUICE_CLI_COMMANDS_H
#define SLUICE_CLI_COMMANDS_H

int cmd_spf_query(int argc, char **argv);

#endif
