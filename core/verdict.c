/* Verdict names as SES spells them. */
#include "core/verdict.h"

#include <strings.h>

static const char *const verdict_names[] = {"UNSET", "PASS", "FAIL", "GRAY", "PROCESSING_FAILED"};
static const char *const policy_names[] = {"UNSET", "NONE", "QUARANTINE", "REJECT"};

const char *verdict_name(enum verdict v)
{
    return (unsigned)v < 5 ? verdict_names[v] : "UNSET";
}

int verdict_parse(const char *s, enum verdict *out)
{
    for (int i = 1; i < 5; i++) {
        if (strcasecmp(s, verdict_names[i]) == 0) {
            *out = (enum verdict)i;
            return 0;
        }
    }
    return -1;
}

const char *dmarc_policy_name(enum dmarc_policy p)
{
    return (unsigned)p < 4 ? policy_names[p] : "UNSET";
}

int dmarc_policy_parse(const char *s, enum dmarc_policy *out)
{
    for (int i = 1; i < 4; i++) {
        if (strcasecmp(s, policy_names[i]) == 0) {
            *out = (enum dmarc_policy)i;
            return 0;
        }
    }
    return -1;
}
