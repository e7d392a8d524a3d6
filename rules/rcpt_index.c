/* Open-addressing hash table from lower-cased keys to lists of rule positions. Keys are
 * "a:local@domain" (addresses), "d:domain" (domain conditions) and "s:domain" (".domain"
 * conditions); a lookup probes the recipient's address, its +label prefixes, its domain and
 * every parent domain, so its cost depends on the address, not on the number of rules. */
#include "rules/rcpt_index.h"
#include "core/xalloc.h"
#include "rules/ruleset.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
    char *key;
    uint32_t *rules;
    size_t n, cap;
};

struct rcpt_index {
    struct slot *slots;
    size_t nslots; /* power of two */
    size_t used;
    uint32_t *all; /* rules without recipient conditions */
    size_t nall, allcap;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct slot *find(const struct rcpt_index *ix, const char *key)
{
    size_t i = hash(key) & (ix->nslots - 1);
    while (ix->slots[i].key && strcmp(ix->slots[i].key, key) != 0)
        i = (i + 1) & (ix->nslots - 1);
    return &ix->slots[i];
}

static void grow(struct rcpt_index *ix)
{
    struct slot *old = ix->slots;
    size_t oldn = ix->nslots;
    ix->nslots = oldn ? oldn * 2 : 64;
    ix->slots = xcalloc(ix->nslots, sizeof *ix->slots);
    for (size_t i = 0; i < oldn; i++)
        if (old[i].key)
            *find(ix, old[i].key) = old[i];
    free(old);
}

static void push(uint32_t **arr, size_t *n, size_t *cap, uint32_t v)
{
    if (*n && (*arr)[*n - 1] == v) /* a rule listing two conditions with the same key */
        return;
    *arr = xgrow(*arr, sizeof **arr, cap, *n);
    (*arr)[(*n)++] = v;
}

static void add(struct rcpt_index *ix, const char *key, uint32_t rule)
{
    if ((ix->used + 1) * 2 > ix->nslots)
        grow(ix);
    struct slot *s = find(ix, key);
    if (!s->key) {
        s->key = xstrdup(key);
        ix->used++;
    }
    push(&s->rules, &s->n, &s->cap, rule);
}

static void lower_copy(char *dst, size_t len, const char *prefix, const char *src)
{
    snprintf(dst, len, "%s%s", prefix, src);
    for (char *p = dst; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

struct rcpt_index *rcpt_index_build(struct rule *const *rules, size_t n)
{
    struct rcpt_index *ix = xcalloc(1, sizeof *ix);
    grow(ix);
    char key[600];
    for (size_t r = 0; r < n; r++) {
        const struct rule *rule = rules[r];
        if (rule->nrcpts == 0)
            push(&ix->all, &ix->nall, &ix->allcap, (uint32_t)r);
        for (size_t c = 0; c < rule->nrcpts; c++) {
            const struct rcpt_cond *rc = &rule->rcpts[c];
            if (rc->local) {
                char addr[520];
                snprintf(addr, sizeof addr, "%s@%s", rc->local, rc->domain);
                lower_copy(key, sizeof key, "a:", addr);
            } else {
                lower_copy(key, sizeof key, rc->subdomains ? "s:" : "d:", rc->domain);
            }
            add(ix, key, (uint32_t)r);
        }
    }
    return ix;
}

void rcpt_index_free(struct rcpt_index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nslots; i++) {
        free(ix->slots[i].key);
        free(ix->slots[i].rules);
    }
    free(ix->slots);
    free(ix->all);
    free(ix);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void collect(const struct rcpt_index *ix, const char *key, uint32_t **out, size_t *n,
                    size_t *cap)
{
    const struct slot *s = find(ix, key);
    if (!s->key)
        return;
    *out = xgrow(*out, sizeof **out, cap, *n + s->n);
    memcpy(*out + *n, s->rules, s->n * sizeof **out);
    *n += s->n;
}

size_t rcpt_index_lookup(const struct rcpt_index *ix, const char *addr, uint32_t **out, size_t *cap)
{
    size_t n = 0;
    const char *at = strrchr(addr, '@');
    if (!at || strlen(addr) > 512)
        return 0;
    char key[600];
    lower_copy(key, sizeof key, "a:", addr);
    size_t local_len = (size_t)(at - addr);
    collect(ix, key, out, &n, cap);
    /* "user@d" also matches "user+label@d" (and "user+a@d" matches "user+a+b@d"). */
    for (size_t i = local_len; i-- > 1;) {
        if (addr[i] != '+')
            continue;
        char k[600];
        snprintf(k, sizeof k, "a:%.*s%s", (int)i, addr, at);
        lower_copy(key, sizeof key, "", k);
        collect(ix, key, out, &n, cap);
    }
    const char *dom = at + 1;
    lower_copy(key, sizeof key, "d:", dom);
    collect(ix, key, out, &n, cap);
    for (const char *p = strchr(dom, '.'); p; p = strchr(p + 1, '.')) {
        lower_copy(key, sizeof key, "s:", p + 1);
        collect(ix, key, out, &n, cap);
    }
    if (ix->nall) {
        *out = xgrow(*out, sizeof **out, cap, n + ix->nall);
        memcpy(*out + n, ix->all, ix->nall * sizeof **out);
        n += ix->nall;
    }
    if (n > 1) {
        qsort(*out, n, sizeof **out, cmp_u32);
        size_t w = 1;
        for (size_t i = 1; i < n; i++)
            if ((*out)[i] != (*out)[w - 1])
                (*out)[w++] = (*out)[i];
        n = w;
    }
    return n;
}
