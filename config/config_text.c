/* Reading and hashing the config file (config_text.h). */
#include "config/config_text.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int config_text_read(const char *path, struct buf *out, char sha256[65], char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read config: %s", path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->len + n > CONFIG_TEXT_MAX) {
            snprintf(err, errlen, "%s: cannot read config: larger than %u bytes", path,
                     CONFIG_TEXT_MAX);
            rc = -1;
            break;
        }
        buf_append(out, chunk, n);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: cannot read config: %s", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    if (rc < 0)
        return -1;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(out->data ? out->data : "", out->len, md, &mdlen, EVP_sha256(), NULL)) {
        snprintf(err, errlen, "%s: cannot hash config", path);
        return -1;
    }
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(sha256 + 2 * i, 3, "%02x", md[i]);
    return 0;
}
