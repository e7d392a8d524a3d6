/* JSON POST with libcurl: one easy handle per worker thread, so connections to the same
 * receiver are kept alive between messages. */
#include "delivery/http_post.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_key_t curl_key;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_cleanup(void *h)
{
    curl_easy_cleanup(h);
}

static void make_key(void)
{
    pthread_key_create(&curl_key, curl_cleanup);
}

static CURL *thread_curl(void)
{
    pthread_once(&curl_once, make_key);
    CURL *h = pthread_getspecific(curl_key);
    if (!h) {
        h = curl_easy_init();
        pthread_setspecific(curl_key, h);
    }
    curl_easy_reset(h);
    return h;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    return size * n;
}

static void hmac_hex(const char *secret, const char *body, size_t len, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac, &maclen);
    for (unsigned i = 0; i < maclen; i++)
        sprintf(out + 2 * i, "%02x", mac[i]);
}

int http_post_json(const char *url, const char *body, const char *delivery_id, const char *secret,
                   long timeout_ms, char *err, size_t errlen)
{
    CURL *h = thread_curl();
    if (!h) {
        snprintf(err, errlen, "cannot initialise curl");
        return -1;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    char line[200];
    snprintf(line, sizeof line, "X-Sluice-Delivery-Id: %s", delivery_id);
    hdrs = curl_slist_append(hdrs, line);
    if (secret) {
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        hmac_hex(secret, body, strlen(body), hex);
        snprintf(line, sizeof line, "X-Sluice-Signature: sha256=%s", hex);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice/" SLUICE_VERSION);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "POST %s: %s", url, curl_easy_strerror(rc));
        return -1;
    }
    if (status < 200 || status > 299) {
        snprintf(err, errlen, "POST %s: HTTP %ld", url, status);
        return -1;
    }
    return 0;
}
