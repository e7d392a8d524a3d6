/* Config lifecycle, lookups and the `sluice check` summary. */
#include "config/config.h"
#include "config/config_dns.h"
#include "config/config_dmarc_reports.h"
#include "config/config_scan.h"
#include "config/config_dmarc.h"
#include "actions/action.h"
#include "core/cidr.h"
#include "core/xalloc.h"
#include "rules/ruleset.h"

#include <stdlib.h>
#include <string.h>

struct config *config_retain(struct config *c)
{
    c->refs++;
    return c;
}

static void server_cfg_free(struct server_cfg *s)
{
    for (size_t i = 0; i < s->nlisten; i++) {
        free(s->listen[i].address);
        free(s->listen[i].rule_set);
        free(s->listen[i].trusted);
    }
    free(s->xclient);
    free(s->bare_newline_exclusions);
    free(s->listen);
    free(s->hostname);
    for (size_t i = 0; i < s->ndomains; i++)
        free(s->domains[i]);
    free(s->domains);
    free(s->data_dir);
    free(s->tls_cert);
    free(s->tls_key);
    free(s->rule_set);
    free(s->metrics);
    free(s->bounce_relay);
}

void config_release(struct config *c)
{
    if (!c || --c->refs > 0)
        return;
    server_cfg_free(&c->server);
    dns_cfg_free(&c->dns);
    for (size_t i = 0; i < c->nsets; i++)
        rule_set_free(c->sets[i]);
    free(c->sets);
    for (size_t i = 0; i < c->nfilters; i++) {
        free(c->filters[i].name);
        free(c->filters[i].nets);
    }
    free(c->filters);
    scan_cfg_free(&c->scan);
    dmarc_reports_cfg_free(&c->dmarc_reports);
    free(c->path);
    free(c);
}

const struct rule_set *config_find_rule_set(const struct config *c, const char *name)
{
    for (size_t i = 0; i < c->nsets; i++)
        if (strcmp(c->sets[i]->name, name) == 0)
            return c->sets[i];
    return NULL;
}

const struct rule_set *config_rule_set_for(const struct config *c, const char *listen_address)
{
    for (size_t i = 0; listen_address && i < c->server.nlisten; i++)
        if (strcmp(c->server.listen[i].address, listen_address) == 0 &&
            c->server.listen[i].rule_set)
            return config_find_rule_set(c, c->server.listen[i].rule_set);
    if (c->server.rule_set)
        return config_find_rule_set(c, c->server.rule_set);
    return c->nsets ? c->sets[0] : NULL;
}

const char *config_receipt_filter_blocks(const struct config *c, const char *ip)
{
    const char *blocked = NULL;
    for (size_t i = 0; i < c->nfilters; i++) {
        const struct receipt_filter *f = &c->filters[i];
        if (!cidr_list_match(f->nets, f->nnets, ip))
            continue;
        if (f->allow)
            return NULL;
        if (!blocked)
            blocked = f->name;
    }
    return blocked;
}

const struct listen_cfg *config_listen_for(const struct config *c, const char *listen_address)
{
    for (size_t i = 0; listen_address && i < c->server.nlisten; i++)
        if (strcmp(c->server.listen[i].address, listen_address) == 0)
            return &c->server.listen[i];
    return NULL;
}

static void describe_rule(const struct rule *r, size_t pos, FILE *out)
{
    fprintf(out, "  %zu. %s (line %d)%s\n", pos, r->name, r->line, r->enabled ? "" : " [disabled]");
    fprintf(out, "       recipients: ");
    if (r->nrcpts == 0)
        fprintf(out, "(all accepted domains)");
    for (size_t i = 0; i < r->nrcpts; i++)
        fprintf(out, "%s%s", i ? ", " : "", r->rcpts[i].text);
    fprintf(out, "; tls %s%s\n", r->tls == TLS_REQUIRE ? "require" : "optional",
            r->scan ? "; scan" : "");
    if (r->when.n || r->unless.n) {
        struct buf d = {0};
        if (r->when.n) {
            buf_puts(&d, "when ");
            cond_list_describe(&r->when, &d);
        }
        if (r->unless.n) {
            buf_puts(&d, r->when.n ? "; unless " : "unless ");
            cond_list_describe(&r->unless, &d);
        }
        fprintf(out, "       %s\n", buf_cstr(&d));
        buf_free(&d);
    }
    for (size_t i = 0; i < r->nactions; i++) {
        const struct action *a = r->actions[i];
        struct buf d = {0};
        if (a->type->describe)
            a->type->describe(a->state, &d);
        fprintf(out, "       %zu) %s %s (line %d)\n", i + 1, a->type->name, buf_cstr(&d), a->line);
        buf_free(&d);
    }
    if (r->nactions == 0)
        fprintf(out, "       (no actions)\n");
}

void config_describe(const struct config *c, FILE *out)
{
    const struct server_cfg *s = &c->server;
    fprintf(out, "%s: OK\n", c->path);
    fprintf(out,
            "server (line %d): hostname %s, data_dir %s, max message %lld bytes, "
            "STARTTLS %s, %lld workers\n",
            s->line, s->hostname, s->data_dir, s->max_message_size, s->tls_cert ? "on" : "off",
            s->workers);
    fprintf(out, "  domains:");
    for (size_t i = 0; i < s->ndomains; i++)
        fprintf(out, " %s", s->domains[i]);
    fprintf(out, "\n");
    for (size_t i = 0; i < s->nlisten; i++) {
        const struct rule_set *rs = config_rule_set_for(c, s->listen[i].address);
        fprintf(out, "  listen %s -> rule set \"%s\"", s->listen[i].address, rs ? rs->name : "?");
        if (s->listen[i].proxy_protocol)
            fprintf(out, ", PROXY protocol from %zu trusted block%s", s->listen[i].ntrusted,
                    s->listen[i].ntrusted == 1 ? "" : "s");
        fprintf(out, "\n");
    }
    for (size_t i = 0; i < c->nfilters; i++) {
        const struct receipt_filter *f = &c->filters[i];
        fprintf(out, "receipt_filter \"%s\" (line %d): %s", f->name, f->line,
                f->allow ? "allow" : "block");
        for (size_t j = 0; j < f->nnets; j++) {
            char net[64];
            cidr_format(&f->nets[j], net, sizeof net);
            fprintf(out, " %s", net);
        }
        fprintf(out, "\n");
    }
    dns_cfg_describe(c, out);
    scan_cfg_describe(&c->scan, out);
    dmarc_cfg_describe(c, out);
    dmarc_reports_cfg_describe(c, out);
    for (size_t i = 0; i < c->nsets; i++) {
        const struct rule_set *rs = c->sets[i];
        fprintf(out, "rule set \"%s\" (line %d): %zu rule%s, in evaluation order\n", rs->name,
                rs->line, rs->nrules, rs->nrules == 1 ? "" : "s");
        for (size_t j = 0; j < rs->nrules; j++)
            describe_rule(rs->rules[j], j + 1, out);
    }
}
