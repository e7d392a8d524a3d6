/* libFuzzer target: SPF records (hostile DNS data) through sluice's RFC 7208 validator and
 * rewrite, then the rewritten record through libspf2's compiler and interpreter, whose macro
 * expander has had memory-safety CVEs (CVE-2021-33912/33913, CVE-2023-42118). Input: one byte
 * choosing the client family, the sender's local-part (also hostile: %{l}) up to a newline,
 * then the record. Lookups go to libspf2's in-memory zone layer, which knows no names. */
#include "auth/spf_syntax.h"
#include "core/buf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spf2/spf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(const char *file, int line, const char *msg)
{
    (void)file;
    (void)line;
    (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    SPF_warning_handler = quiet;
    SPF_info_handler = quiet;
    bool v6 = data[0] & 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(text, '\n', len);
    size_t llen = nl ? (size_t)(nl - text) : 0;
    const char *rec = nl ? nl + 1 : text;
    size_t rlen = len - (size_t)(rec - text);

    struct buf out = {0};
    char err[160];
    if (spf_record_prepare(rec, rlen, v6, NULL, &out, err, sizeof err) == 0) {
        SPF_server_t *srv = SPF_server_new(SPF_DNS_ZONE, 0);
        SPF_request_t *req = SPF_request_new(srv);
        SPF_response_t *resp = SPF_response_new(req);
        SPF_record_t *r = NULL;
        if (v6) {
            struct in6_addr a6;
            inet_pton(AF_INET6, "2001:db8::1", &a6);
            SPF_request_set_ipv6(req, a6);
        } else {
            struct in_addr a4;
            inet_pton(AF_INET, "192.0.2.1", &a4);
            SPF_request_set_ipv4(req, a4);
        }
        SPF_request_set_helo_dom(req, "helo.example.com");
        char from[300];
        snprintf(from, sizeof from, "%.*s@example.com", (int)(llen > 200 ? 200 : llen), text);
        if (!memchr(from, '\0', strlen(from)) && SPF_request_set_env_from(req, from) == 0 &&
            SPF_record_compile(srv, resp, &r, buf_cstr(&out)) == SPF_E_SUCCESS) {
            req->use_helo = 0;
            req->cur_dom = req->env_from_dp;
            resp->spf_record_exp = r;
            SPF_record_interpret(r, req, resp, 0);
            resp->spf_record_exp = NULL;
        }
        if (r)
            SPF_record_free(r);
        SPF_response_free(resp);
        SPF_request_free(req);
        SPF_server_free(srv);
    }
    buf_free(&out);
    return 0;
}
