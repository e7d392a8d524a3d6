/* dkim-sign: signs a message for the tests with libopendkim (opendkim-testmsg cannot take CRLF
 * input nor choose canonicalization). Reads the message (CRLF lines) on stdin, writes it with
 * a DKIM-Signature field on top to stdout.
 *   dkim-sign -d DOMAIN -s SELECTOR -k KEYFILE [-c relaxed/simple] [-a rsa-sha256] [-l]
 * -l adds a body length (l=) covering the whole body as given. */
#include "core/headers.h"

#include <opendkim/dkim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0, r;
    char *b = malloc(cap);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            b = realloc(b, cap *= 2);
    }
    *len = n;
    return b;
}

static dkim_canon_t canon(const char *s)
{
    return strcmp(s, "relaxed") == 0 ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
}

int main(int argc, char **argv)
{
    const char *domain = NULL, *selector = NULL, *keyfile = NULL, *canons = "relaxed/relaxed",
               *alg = "rsa-sha256";
    int with_length = 0, c;
    while ((c = getopt(argc, argv, "d:s:k:c:a:l")) != -1) {
        switch (c) {
        case 'd':
            domain = optarg;
            break;
        case 's':
            selector = optarg;
            break;
        case 'k':
            keyfile = optarg;
            break;
        case 'c':
            canons = optarg;
            break;
        case 'a':
            alg = optarg;
            break;
        case 'l':
            with_length = 1;
            break;
        default:
            return 2;
        }
    }
    if (!domain || !selector || !keyfile) {
        fprintf(stderr,
                "usage: dkim-sign -d DOMAIN -s SELECTOR -k KEYFILE [-c h/b] [-a alg] [-l]\n");
        return 2;
    }
    size_t klen, mlen;
    FILE *kf = fopen(keyfile, "rb");
    if (!kf) {
        perror(keyfile);
        return 1;
    }
    char *key = slurp(kf, &klen);
    fclose(kf);
    key = realloc(key, klen + 1);
    key[klen] = '\0';
    char *msg = slurp(stdin, &mlen);

    char hc[16] = "relaxed", bc[16] = "relaxed";
    sscanf(canons, "%15[a-z]/%15[a-z]", hc, bc);
    dkim_alg_t a = strcmp(alg, "rsa-sha1") == 0         ? DKIM_SIGN_RSASHA1
                   : strcmp(alg, "ed25519-sha256") == 0 ? DKIM_SIGN_ED25519SHA256
                                                        : DKIM_SIGN_RSASHA256;
    struct hdr_list h;
    headers_parse(msg, mlen, &h);
    DKIM_LIB *lib = dkim_init(NULL, NULL);
    DKIM_STAT st;
    ssize_t length = with_length ? (ssize_t)(mlen - h.body_off) : -1;
    DKIM *dk = dkim_sign(lib, (const unsigned char *)"test", NULL, (unsigned char *)key,
                         (const unsigned char *)selector, (const unsigned char *)domain, canon(hc),
                         canon(bc), a, length, &st);
    if (!dk) {
        fprintf(stderr, "dkim_sign: %s\n", dkim_getresultstr(st));
        return 1;
    }
    for (size_t i = 0; i < h.n && st == DKIM_STAT_OK; i++) {
        size_t flen = h.f[i].len;
        while (flen > 0 &&
               (msg[h.f[i].off + flen - 1] == '\n' || msg[h.f[i].off + flen - 1] == '\r'))
            flen--;
        st = dkim_header(dk, (unsigned char *)msg + h.f[i].off, flen);
    }
    if (st == DKIM_STAT_OK)
        st = dkim_eoh(dk);
    if (st == DKIM_STAT_OK && mlen > h.body_off)
        st = dkim_body(dk, (unsigned char *)msg + h.body_off, mlen - h.body_off);
    if (st == DKIM_STAT_OK)
        st = dkim_eom(dk, NULL);
    unsigned char sig[8192];
    if (st == DKIM_STAT_OK)
        st = dkim_getsighdr(dk, sig, sizeof sig, strlen(DKIM_SIGNHEADER) + 2);
    if (st != DKIM_STAT_OK) {
        fprintf(stderr, "signing failed: %s (%s)\n", dkim_getresultstr(st), dkim_geterror(dk));
        return 1;
    }
    printf("%s: ", DKIM_SIGNHEADER);
    for (unsigned char *p = sig; *p; p++) {
        if (*p == '\n' && (p == sig || p[-1] != '\r'))
            putchar('\r');
        putchar(*p);
    }
    printf("\r\n");
    fwrite(msg, 1, mlen, stdout);
    dkim_free(dk);
    dkim_close(lib);
    free(h.f);
    free(key);
    free(msg);
    return 0;
}
