/* The `sluice` table scripts see: sluice.log(level, ...), sluice.metric(name [, value]),
 * sluice.json.encode(value) / sluice.json.decode(text), sluice.dns.txt(name) /
 * sluice.dns.mx(name). */
#ifndef SLUICE_SCRIPT_STDLIB_H
#define SLUICE_SCRIPT_STDLIB_H

struct lua_State;

/* Who is logging: borrowed by the state, must outlive it. */
struct script_origin {
    const char *script; /* path */
    const char *qid;    /* NULL outside a message (config load) */
};

/* Sets the global `sluice` in a sandboxed state. */
void script_stdlib_open(struct lua_State *L, const struct script_origin *origin);

#endif
