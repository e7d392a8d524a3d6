/* The loaded configuration: server settings and rule sets, immutable once loaded. Shared by
 * reference count: the server holds one reference to the config in force, each transaction
 * one to the config it started under, so a reload never changes the rules a message is judged
 * by. Reference counting happens on the event-loop thread only. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "auth/dns.h"          /* struct dns_cfg */
#include "rules/undelivered.h" /* enum undelivered_policy */
#include "scan/scan.h"         /* struct scan_cfg */

struct rule_set;
struct cidr;

struct listen_cfg {
    char *address;  /* numeric "ip:port" */
    char *rule_set; /* NULL: the server's default */
    int line;
    bool proxy_protocol;  /* connections must start with a PROXY header (from trusted only) */
    struct cidr *trusted; /* sources allowed to send one; others are closed unheard */
    size_t ntrusted;
};

struct server_cfg {
    int line;
    struct listen_cfg *listen;
    size_t nlisten;
    char *hostname;
    char **domains; /* "example.test" exact, ".example.test" every subdomain */
    size_t ndomains;
    char *data_dir;
    long long max_message_size;
    char *tls_cert;
    char *tls_key;
    bool log_json;
    int log_level; /* enum log_level (core/log.h): the most verbose level written */
    long long max_recipients;
    long long max_connections;
    long long max_connections_per_ip;
    long long listen_backlog;  /* connections the kernel queues before accept(), per listener */
    long long command_timeout; /* seconds */
    long long data_timeout;    /* seconds, whole DATA phase */
    long long max_errors;      /* protocol errors before the session is closed */
    long long workers;
    char *rule_set;
    bool auth_checks;
    char *metrics;              /* "ip:port" of the Prometheus endpoint, NULL when off */
    long long retry_initial_ms; /* first retry of a failed post-acceptance action */
    long long retry_max_ms;     /* backoff cap */
    char *bounce_relay;         /* "host:port" DSNs are sent through; NULL: none sent */
    struct cidr *xclient;       /* clients offered XCLIENT */
    size_t nxclient;
    /* bare_newline = "normalize": a line ending in a bare LF is taken as ending in CRLF
     * (commands and DATA; only CRLF.CRLF ends DATA still). Otherwise ("reject") a bare LF
     * is refused and the session ends, except for clients in the exclusions, which are
     * normalized. The refusal's code: 550 (Postfix's default) or 521. */
    bool bare_lf_normalize;
    long long bare_newline_reject_code;
    struct cidr *bare_newline_exclusions;
    size_t nbare_newline_exclusions;
    enum undelivered_policy undelivered; /* recipients no delivering action reaches */
};

/* receipt_filter { name, policy = "block"|"allow", cidr = { ... } } (SES receipt filters). */
struct receipt_filter {
    char *name;
    int line;
    bool allow;
    struct cidr *nets;
    size_t nnets;
};

/* dmarc { tree_walk = true }: find DMARC policy records and organizational domains by RFC
 * 9989's DNS tree walk instead of RFC 7489's public suffix list (the default). */
struct dmarc_cfg {
    int line; /* 0 when the block is absent */
    bool tree_walk;
};

/* dmarc_reports { org_name, email, interval, send } (config/config_dmarc_reports.c): line is 0
 * when absent, and then no DMARC evaluation is recorded. */
struct dmarc_reports_cfg {
    int line;
    char *org_name;
    char *email;
    long long interval_s;
    bool send;
};

struct action;

struct config {
    int refs;
    char *path;
    unsigned generation; /* counts reloads; shows in logs */
    char sha256[65];     /* hex SHA-256 of the file's text as loaded */
    struct server_cfg server;
    struct dns_cfg dns;
    struct dmarc_cfg dmarc;
    struct rule_set **sets;
    size_t nsets;
    struct receipt_filter *filters;
    size_t nfilters;
    struct scan_cfg scan;
    struct dmarc_reports_cfg dmarc_reports;
};

/* Loads and validates path in a fresh Lua state that is closed before returning. Returns a
 * config with one reference, or NULL with "FILE:LINE: message" in err. */
struct config *config_load(const char *path, char *err, size_t errlen);
/* Builds the post-acceptance action of type (its config name) from params, the JSON text of
 * its config table as struct action keeps it, read relative to config_file: what a spooled job
 * carries, so that it runs as it was configured when spooled whatever the config in force
 * says. The type's parser runs in a fresh Lua state with no libraries, as at config load.
 * Returns the action (free with action_free), or NULL with the reason in err. */
struct action *config_action_build(const char *type, const char *params, const char *config_file,
                                   char *err, size_t errlen);
struct config *config_retain(struct config *c);
/* Drops one reference; frees the config with the last one. Accepts NULL. */
void config_release(struct config *c);

const struct rule_set *config_find_rule_set(const struct config *c, const char *name);
/* The rule set for a listener address (as written in listen), or the default. */
const struct rule_set *config_rule_set_for(const struct config *c, const char *listen_address);
/* The name of the block filter that refuses ip, or NULL when the client may connect (no block
 * filter matches, or an allow filter does: allow wins). */
const char *config_receipt_filter_blocks(const struct config *c, const char *ip);
/* The listen entry for a listener address (as written in listen), or NULL. */
const struct listen_cfg *config_listen_for(const struct config *c, const char *listen_address);
/* The one-screen summary `sluice check` prints. */
void config_describe(const struct config *c, FILE *out);

#endif
