/* `sluice check` warnings: a config that loads but does something its author surely did not
 * mean (a rule that can never match, actions that never run, an action that will fail at its
 * first use). Not errors: the config is valid and serve would run it. */
#ifndef SLUICE_CONFIG_WARN_H
#define SLUICE_CONFIG_WARN_H

#include <stdio.h>

struct config;

/* Writes one "FILE:LINE: warning: ..." line per finding to out; returns how many. */
int config_warn(const struct config *c, FILE *out);

#endif
