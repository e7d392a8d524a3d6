/* The server { } block as one table: a row per key (name, type, default, bounds, where it goes
 * in struct server_cfg), in the manner of Postfix's CONFIG_INT_TABLE. The loop that reads the
 * block, the defaults, and the list of known keys in unknown-key errors all come from it. */
#ifndef SLUICE_SERVER_PARAMS_H
#define SLUICE_SERVER_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

struct lua_State;
struct server_cfg;

enum server_param_type {
    SP_INTEGER, /* long long within [min, max] */
    SP_BOOL,
    SP_STRING,  /* char *, owned by the config */
    SP_STRINGS, /* char ** with its size_t count at count_off; a single string is a list of one */
    SP_CUSTOM,  /* parse() reads the key and stores what it means */
};

struct server_param {
    const char *name;
    enum server_param_type type;
    size_t off;       /* the field in struct server_cfg (SP_CUSTOM: unused) */
    size_t count_off; /* SP_STRINGS: the count's field */
    long long def;    /* SP_INTEGER, SP_BOOL */
    long long min, max;
    const char *def_str;                  /* SP_STRING */
    void (*def_fn)(struct server_cfg *s); /* a default computed at load (host name, cores) */
    int (*parse)(struct lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                 size_t errlen);
    /* After the key is read (given: it was in the block); may also normalise the value. */
    int (*check)(struct server_cfg *s, bool given, char *err, size_t errlen);
};

/* The rows, in the order of the known-key list; server_nparams of them. */
extern const struct server_param server_params[];
extern const size_t server_nparams;

/* Sets every default of the table in s (called before the block is read). */
void server_params_defaults(struct server_cfg *s);
/* Reads the server { } table at stack index idx (the call at line) into s. Returns 0, or -1
 * with a message naming the key in err. */
int server_params_parse(struct lua_State *L, int idx, struct server_cfg *s, int line, char *err,
                        size_t errlen);

#endif
