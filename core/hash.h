/* FNV-1a, the one string/byte hash of the project's hash tables (not for anything an attacker
 * must not predict: tables that hash client-chosen keys bound their chains or their size). */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_INIT 2166136261u

/* Continues hash h over n bytes; start from HASH_FNV1A_INIT. */
static inline uint32_t hash_fnv1a(uint32_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* The same over a NUL-terminated string. */
static inline uint32_t hash_fnv1a_str(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

#endif
