/* Organizational domains through libpsl. libopendmarc 1.4.2's list code did this before and
 * found none under a TLD missing from the list (the default rule "*" of RFC 7489 §3.2 was
 * not applied) and handled wildcard rules such as "*.ck" wrongly. */
#include "auth/org_domain.h"
#include "core/log.h"
#include "core/xalloc.h"

#include <libpsl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Debian's publicsuffix package: the compiled form first (what libpsl loads fastest), the
 * text form if only that one is there. */
static const char *const psl_files[] = {
    "/usr/share/publicsuffix/public_suffix_list.dafsa",
    "/usr/share/publicsuffix/public_suffix_list.dat",
};

static psl_ctx_t *psl; /* loaded once, never freed */

static void psl_init(void)
{
    for (size_t i = 0; i < sizeof psl_files / sizeof *psl_files && !psl; i++)
        psl = psl_load_file(psl_files[i]);
    if (!psl)
        log_msg(LOG_ERR, "dmarc: cannot load the public suffix list (%s or %s)", psl_files[0],
                psl_files[1]);
}

bool dmarc_org_domain_ready(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, psl_init);
    return psl != NULL;
}

void dmarc_org_domain(const char *d, char *out, size_t outlen)
{
    if (outlen)
        out[0] = '\0';
    if (!d || !*d || outlen < 2 || !dmarc_org_domain_ready())
        return;
    /* "mail.example.com." is the same name as "mail.example.com"; libpsl would keep the dot. */
    size_t n = strlen(d);
    if (d[n - 1] == '.')
        n--;
    if (n == 0 || d[0] == '.' || d[n - 1] == '.' || memmem(d, n, "..", 2))
        return;
    char *name = xstrndup(d, n);
    char *lower = NULL;
    /* libpsl matches lower-case UTF-8 (A-labels are ASCII and match the list's xn-- forms) */
    if (psl_str_to_utf8lower(name, "utf-8", NULL, &lower) == PSL_SUCCESS) {
        const char *reg = psl_registrable_domain(psl, lower);
        if (reg && strlen(reg) < outlen)
            memcpy(out, reg, strlen(reg) + 1);
    }
    psl_free_string(lower);
    free(name);
}
