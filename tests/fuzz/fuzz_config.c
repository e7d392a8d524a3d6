/* libFuzzer target: the config loader on arbitrary Lua source. The input is written to a file
 * (config_load reads a path) inside a private temporary directory that is also the working
 * directory, so relative paths a config names stay there. A rejected config must come with a
 * message; an accepted one must survive the describe path and release cleanly. */
#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir_path[4096], path[4096];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir_path); /* only when the config runs left nothing else behind */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char tmpl[] = "/tmp/sluice-fuzz-config-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir || chdir(dir) < 0)
        abort();
    snprintf(dir_path, sizeof dir_path, "%s", dir);
    snprintf(path, sizeof path, "%s/fuzz.lua", dir);
    atexit(cleanup);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    char err[1024] = "";
    struct config *c = config_load(path, err, sizeof err);
    if (!c) {
        if (!err[0])
            abort();
        return 0;
    }
    FILE *null = fopen("/dev/null", "w");
    config_describe(c, null);
    fclose(null);
    config_release(c);
    return 0;
}
