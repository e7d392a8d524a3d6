/* The server { } table: every integer key's default, min and max load, one past either bound
 * fails naming the file, line and key; the other defaults hold; and docs/man/sluice.lua.5
 * documents exactly the keys the table has. */
#include "check.h"
#include "man_terms.h"
#include "config/config.h"
#include "config/server_params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

/* Loads a config whose server block (line 2) carries extra; NULL on error (err set). */
static struct config *load(const char *extra, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f)
        exit(2);
    fprintf(f,
            "-- line 1\nserver { listen = \"127.0.0.1:2599\", domains = \"example.test\"%s%s }\n"
            "rule_set \"main\" { rule { name = \"r\", actions = { stop {} } } }\n",
            extra ? ", " : "", extra ? extra : "");
    fclose(f);
    return config_load(path, err, errlen);
}

static long long int_at(const struct config *c, const struct server_param *p)
{
    return *(const long long *)((const char *)&c->server + p->off);
}

/* The integer keys as documented: a change to the table must change this list too. */
static const struct {
    const char *name;
    long long def, min, max;
} documented[] = {
    {"max_message_size", 26214400, 1024, 1LL << 40},
    {"max_recipients", 100, 1, 100000},
    {"max_connections", 10000, 1, 1000000},
    {"max_connections_per_ip", 50, 1, 1000000},
    {"command_timeout", 300, 1, 86400},
    {"data_timeout", 600, 1, 86400},
    {"max_errors", 20, 1, 100000},
    {"workers", -1, 1, 256}, /* default: four per core */
    {"retry_initial_ms", 60000, 10, 86400000},
    {"retry_max_ms", 1800000, 10, 86400000},
    {"listen_backlog", 4096, 1, 65535},
    {"bare_newline_reject_code", 550, 521, 550},
};

static void check_integers(void)
{
    char err[512], extra[128], want[256];
    size_t nint = 0;
    struct config *dflt = load(NULL, err, sizeof err);
    CHECK(dflt != NULL);
    if (!dflt) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    for (size_t i = 0; i < server_nparams; i++) {
        const struct server_param *p = &server_params[i];
        if (p->type != SP_INTEGER)
            continue;
        nint++;
        size_t d = 0;
        while (d < sizeof documented / sizeof documented[0] && strcmp(documented[d].name, p->name))
            d++;
        CHECK(d < sizeof documented / sizeof documented[0]);
        if (d == sizeof documented / sizeof documented[0]) {
            fprintf(stderr, "  undocumented integer key %s\n", p->name);
            continue;
        }
        CHECK_INT(p->min, documented[d].min);
        CHECK_INT(p->max, documented[d].max);
        if (documented[d].def >= 0)
            CHECK_INT(int_at(dflt, p), documented[d].def);
        else
            CHECK(int_at(dflt, p) >= p->min && int_at(dflt, p) <= p->max);
        long long ok[] = {p->min, p->max};
        for (size_t k = 0; k < 2; k++) {
            snprintf(extra, sizeof extra, "%s = %lld", p->name, ok[k]);
            struct config *c = load(extra, err, sizeof err);
            CHECK(c != NULL);
            if (c)
                CHECK_INT(int_at(c, p), ok[k]);
            else
                fprintf(stderr, "  %s: %s\n", extra, err);
            config_release(c);
        }
        long long bad[] = {p->min - 1, p->max + 1};
        for (size_t k = 0; k < 2; k++) {
            snprintf(extra, sizeof extra, "%s = %lld", p->name, bad[k]);
            struct config *c = load(extra, err, sizeof err);
            CHECK(c == NULL);
            config_release(c);
            snprintf(want, sizeof want,
                     "%s:2: server: field '%s' must be between %lld and %lld, got %lld", path,
                     p->name, p->min, p->max, bad[k]);
            CHECK_STR(err, want);
        }
    }
    CHECK_INT(nint, sizeof documented / sizeof documented[0]);
    const struct server_cfg *s = &dflt->server;
    CHECK(s->auth_checks);
    CHECK(!s->log_json);
    CHECK_STR(s->data_dir, "var");
    CHECK(s->hostname && s->hostname[0]);
    CHECK(s->rule_set == NULL && s->metrics == NULL && s->bounce_relay == NULL);
    config_release(dflt);
}

/* undelivered: reject by default, each policy by name, anything else an error at the line. */
static void check_undelivered(void)
{
    char err[512], want[256];
    struct config *c = load(NULL, err, sizeof err);
    CHECK(c != NULL);
    if (c)
        CHECK_INT(c->server.undelivered, UNDELIVERED_REJECT);
    config_release(c);
    static const struct {
        const char *text;
        enum undelivered_policy policy;
    } ok[] = {{"reject", UNDELIVERED_REJECT},
              {"tempfail", UNDELIVERED_TEMPFAIL},
              {"accept", UNDELIVERED_ACCEPT}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char extra[64];
        snprintf(extra, sizeof extra, "undelivered = \"%s\"", ok[i].text);
        c = load(extra, err, sizeof err);
        CHECK(c != NULL);
        if (c)
            CHECK_INT(c->server.undelivered, ok[i].policy);
        config_release(c);
    }
    c = load("undelivered = \"drop\"", err, sizeof err);
    CHECK(c == NULL);
    config_release(c);
    snprintf(want, sizeof want,
             "%s:2: server: undelivered must be \"reject\", \"tempfail\" or \"accept\", got "
             "\"drop\"",
             path);
    CHECK_STR(err, want);
    c = load("undelivered = true", err, sizeof err);
    CHECK(c == NULL);
    config_release(c);
    snprintf(want, sizeof want, "%s:2: ", path);
    CHECK_PREFIX(err, want);
    CHECK(strstr(err, "undelivered") != NULL);
}

static void check_unknown_key(void)
{
    char err[512];
    struct config *c = load("hostnme = \"x\"", err, sizeof err);
    CHECK(c == NULL);
    char want[128];
    snprintf(want, sizeof want, "%s:2: server: unknown key 'hostnme' (known: ", path);
    CHECK_PREFIX(err, want);
    for (size_t i = 0; i < server_nparams; i++)
        CHECK(strstr(err, server_params[i].name) != NULL);
}

/* The keys of the man page's SERVER section: one entry per key of the table, and no other. */
static void check_man_page(void)
{
    static char terms[256][MAN_TERM_MAX];
    int nt = man_terms("SERVER", terms, 256);
    CHECK(nt > 0);
    for (int t = 0; t < nt; t++) {
        size_t i = 0;
        while (i < server_nparams && strcmp(server_params[i].name, terms[t]))
            i++;
        if (i == server_nparams)
            fprintf(stderr, "  man page documents unknown server key %s\n", terms[t]);
        CHECK(i < server_nparams);
    }
    if ((size_t)nt != server_nparams)
        fprintf(stderr, "  the man page documents %d server keys, the table has %zu\n", nt,
                server_nparams);
    CHECK_INT(nt, server_nparams);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/sluice-server-params-%d.lua", (int)getpid());
    check_integers();
    check_unknown_key();
    check_undelivered();
    check_man_page();
    unlink(path);
    return CHECK_DONE();
}
