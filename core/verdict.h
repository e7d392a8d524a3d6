/* Verdicts in Amazon SES's terms, shared by the authentication checks, the scanners, the rule
 * conditions, Lua scripts and notifications. */
#ifndef SLUICE_VERDICT_H
#define SLUICE_VERDICT_H

enum verdict {
    VERDICT_UNSET = 0, /* not computed (checks off, or no scan asked for) */
    VERDICT_PASS,
    VERDICT_FAIL,
    VERDICT_GRAY,
    VERDICT_PROCESSING_FAILED,
};

enum dmarc_policy {
    DMARC_POLICY_UNSET = 0,
    DMARC_POLICY_NONE,
    DMARC_POLICY_QUARANTINE,
    DMARC_POLICY_REJECT,
};

struct verdicts {
    enum verdict spf, dkim, dmarc, spam, virus;
    enum dmarc_policy dmarc_policy; /* set when dmarc is FAIL or GRAY */
};

/* "PASS", "FAIL", "GRAY", "PROCESSING_FAILED", or "UNSET". */
const char *verdict_name(enum verdict v);
/* Parses a verdict name (case-insensitive); returns -1 when unknown. */
int verdict_parse(const char *s, enum verdict *out);
/* "NONE", "QUARANTINE", "REJECT", or "UNSET". */
const char *dmarc_policy_name(enum dmarc_policy p);
int dmarc_policy_parse(const char *s, enum dmarc_policy *out);

#endif
