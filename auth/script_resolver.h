/* Gives Lua scripts the server's DNS layer (sluice.dns.txt / .mx). */
#ifndef SLUICE_SCRIPT_RESOLVER_H
#define SLUICE_SCRIPT_RESOLVER_H

/* Call once before worker threads start. */
void script_resolver_install(void);

#endif
