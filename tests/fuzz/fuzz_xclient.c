/* libFuzzer target: XCLIENT attributes and CIDR blocks, the two parsers that decide which
 * client address a session believes. Accepted XCLIENT values must be safe to put in a
 * Received: header (printable ASCII, no spaces). */
#include "core/cidr.h"
#include "receiver/xclient.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 33 || (unsigned char)*s > 126)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct xclient_attrs a;
    const char *reply = NULL;
    if (xclient_parse(text, &a, &reply) == 0) {
        printable(a.name);
        printable(a.helo);
        printable(a.addr);
        if (a.addr_set == 1 && !a.addr[0])
            abort();
        if (a.port < 0 || a.port > 65535)
            abort();
    } else if (!reply || strncmp(reply, "501 5.5.4 ", 10) != 0) {
        abort();
    }
    struct cidr c;
    const char *why = NULL;
    if (cidr_parse(text, &c, &why) == 0) {
        if (c.prefix < 0 || c.prefix > (c.family == 2 /* AF_INET */ ? 32 : 128))
            abort();
        (void)cidr_match(&c, "192.0.2.1");
        (void)cidr_match(&c, "2001:db8::1");
    } else if (!why) {
        abort();
    }
    free(text);
    return 0;
}
