/* A Lua 5.4 state for one operator script invocation: a counting allocator enforcing a memory
 * cap, an instruction-count hook enforcing a wall-clock deadline, and a restricted standard
 * library (no io, no os beyond time/clock/date, no require/dofile/loadfile/debug, text-only
 * load, bounded string.rep and pattern functions, pcall/xpcall/coroutine.resume that cannot
 * swallow a timeout or a memory kill). One sandbox belongs to one thread for one invocation;
 * nothing in it is shared. */
#ifndef SLUICE_SANDBOX_H
#define SLUICE_SANDBOX_H

#include <stddef.h>
#include <time.h>

struct lua_State;

enum sandbox_kill {
    SANDBOX_ALIVE = 0,
    SANDBOX_TIMEOUT,
    SANDBOX_MEMORY,
};

struct sandbox_owned {
    void *ptr;
    void (*free_fn)(void *);
};

struct sandbox {
    struct lua_State *L;
    size_t used, limit; /* bytes allocated by Lua, cap */
    unsigned refusals;  /* allocations refused at the cap */
    size_t arena_top;   /* bytes taken from the thread's arena */
    int timeout_ms;
    const char *name; /* the script, borrowed */
    struct timespec deadline;
    enum sandbox_kill killed;
    unsigned log_lines; /* sluice.log calls so far */
    char where[160];    /* "file:line" where the hook last saw the script, for memory kills */
    /* C resources that die with the sandbox even when a Lua error unwinds past their owner
     * (see sandbox_own). */
    struct sandbox_owned *owned;
    size_t nowned, owned_cap;
    void *user; /* what the embedding code hangs on the state (the invocation) */
};

/* Creates the state and opens the restricted library. memory_bytes caps the Lua heap; name
 * (the script) stands for the position in messages until the hook has seen a line.
 * Returns 0, or -1 when the state cannot even be created within the cap. */
int sandbox_open(struct sandbox *sb, size_t memory_bytes, int timeout_ms, const char *name);
/* Starts the clock: from now on the hook ends the script after timeout_ms. */
void sandbox_start(struct sandbox *sb);
/* Closes the state and frees every owned resource. */
void sandbox_close(struct sandbox *sb);
/* The sandbox of a state made by sandbox_open. */
struct sandbox *sandbox_of(struct lua_State *L);
/* Milliseconds left before the deadline (at least 0). */
int sandbox_remaining_ms(struct sandbox *sb);

/* Calls the function below nargs arguments like lua_pcall. On failure writes a one-line reason
 * with the script's file:line to err (timeout and memory kills say so) and pops the error.
 * Returns the lua_pcall status. */
int sandbox_pcall(struct sandbox *sb, int nargs, int nresults, char *err, size_t errlen);

/* Registers a C resource to be freed with free_fn at sandbox_close unless released earlier:
 * for anything held across a call that may raise (allocation failure included). */
void sandbox_own(struct sandbox *sb, void *ptr, void (*free_fn)(void *));
/* Frees ptr now (with its free_fn) and forgets it. */
void sandbox_release(struct sandbox *sb, void *ptr);
/* Raises the error on top of the stack after an internal lua_pcall that returned status:
 * a memory failure is a kill, like in the script itself. */
int sandbox_rethrow(struct lua_State *L, int status);

#endif
