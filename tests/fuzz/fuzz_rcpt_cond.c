/* libFuzzer target: recipient conditions. The input is "condition NUL address": the condition
 * is parsed as the config would, then matched against the address when it is a valid mailbox
 * (the only kind the session passes). A condition written as an exact valid address must
 * match that address. */
#include "core/address.h"
#include "rules/ruleset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 2);
    memcpy(text, data, size);
    text[size] = '\0';
    text[size + 1] = '\0';
    const char *cond_text = text;
    const char *addr = text + strlen(text) + 1; /* after the first NUL, or "" */

    struct rcpt_cond c;
    char err[512];
    if (rcpt_cond_parse(cond_text, &c, err, sizeof err) == 0) {
        if (address_valid(addr))
            (void)rcpt_cond_match(&c, addr);
        rcpt_cond_free(&c);
    } else if (!err[0]) {
        abort();
    }
    /* The address as its own condition. */
    if (address_valid(addr) && rcpt_cond_parse(addr, &c, err, sizeof err) == 0) {
        if (!rcpt_cond_match(&c, addr))
            abort();
        rcpt_cond_free(&c);
    }
    free(text);
    return 0;
}
