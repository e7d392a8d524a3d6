/* Label values in the Prometheus text exposition format. */
#ifndef SLUICE_PROM_LABEL_H
#define SLUICE_PROM_LABEL_H

struct buf;

/* Appends v to b escaped as a label value (backslash, double quote and newline). */
void prom_label_value(struct buf *b, const char *v);

#endif
