/* The config file's text, read once: what the Lua loader compiles is exactly what was hashed
 * (sluice_config_hash_info), with no second read that could see a newer file. */
#ifndef SLUICE_CONFIG_TEXT_H
#define SLUICE_CONFIG_TEXT_H

#include <stddef.h>

#include "core/buf.h"

#define CONFIG_TEXT_MAX (16u * 1024 * 1024)

/* Reads path (at most CONFIG_TEXT_MAX bytes) into out (the caller frees it with buf_free) and
 * writes the lowercase hex SHA-256 of its bytes into sha256 (65 bytes with the NUL). Returns
 * -1 with "PATH: cannot read config: reason" in err. */
int config_text_read(const char *path, struct buf *out, char sha256[65], char *err, size_t errlen);

#endif
