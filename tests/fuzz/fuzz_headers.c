/* libFuzzer target: the header block readers that conditions, DKIM-independent header
 * matching, notifications and the add-header path rely on. Any bytes are a "message"; every
 * header the iterator yields must also be found by name, and the first-address extractor must
 * stay within its buffer. */
#include "core/buf.h"
#include "core/headers.h"
#include "core/message.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    if (headers_length(msg, size) > size)
        abort();
    struct buf name = {0}, value = {0}, found = {0};
    size_t pos = 0;
    int n = 0;
    while (n < 64 && header_next(msg, size, &pos, &name, &value)) {
        if (pos > size + 1)
            abort();
        char addr[256];
        (void)header_first_address(buf_cstr(&value), addr, sizeof addr);
        if (strlen(addr) >= sizeof addr)
            abort();
        /* Names with NUL or ':' cannot be looked up by name; the rest must be found. */
        if (name.len && !memchr(name.data, '\0', name.len) && !memchr(name.data, ':', name.len)) {
            buf_reset(&found);
            if (!header_find(msg, size, buf_cstr(&name), 0, &found))
                abort();
        }
        n++;
    }
    /* The add-header path: a header added to a message built from the input. */
    struct message *m = message_new();
    m->hostname = "mx.example.test";
    buf_append(&m->body, data, size);
    message_add_header(m, "X-Fuzz", "value");
    struct buf head = {0};
    message_trace_headers(m, "user@example.test", &head);
    if (head.len == 0)
        abort();
    buf_free(&head);
    message_free(m);
    buf_free(&name);
    buf_free(&value);
    buf_free(&found);
    return 0;
}
