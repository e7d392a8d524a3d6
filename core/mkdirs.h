/* mkdir -p for the writers that keep their own trees (spool, DMARC report store). */
#ifndef SLUICE_MKDIRS_H
#define SLUICE_MKDIRS_H

#include <sys/types.h>

/* Creates path and every missing parent with mode; existing ones are fine. Returns 0 or a
 * negative errno. */
int mkdirs(const char *path, mode_t mode);

#endif
