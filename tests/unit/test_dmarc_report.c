/* The report-ingest path without the server: every sample in tests/data/dmarc-reports through
 * report_mail_attachment / report_unpack / dmarc_xml_parse, plus hostile inputs built here
 * (entity expansion, external entities, gzip bombs, truncated streams, deep nesting). The
 * SMTP-level behaviour is in tests/integration/test_dmarc_ingest.py. */
#include "check.h"
#include "core/buf.h"
#include "reports/dmarc_aggregate.h"
#include "reports/dmarc_send.h"
#include "dmarc/dmarc_xml.h"
#include "dmarc/report_mail.h"
#include "dmarc/unpack.h"

#include <gmime/gmime.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *source_dir(void)
{
    const char *d = getenv("SLUICE_SOURCE_DIR");
    return d ? d : ".";
}

static int read_sample(const char *name, struct buf *out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/dmarc-reports/%s", source_dir(), name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char b[65536];
    size_t n;
    while ((n = fread(b, 1, sizeof b, f)) > 0)
        buf_append(out, b, n);
    fclose(f);
    return 0;
}

/* Runs the whole path; returns the document or NULL with err. */
static json_t *ingest(const char *data, size_t len, int is_mail, size_t max, char *err,
                      size_t errlen)
{
    struct buf raw = {0}, xml = {0};
    json_t *doc = NULL;
    if (is_mail) {
        if (report_mail_attachment(data, len, &raw, err, errlen) < 0)
            goto done;
        data = raw.data;
        len = raw.len;
    }
    if (report_unpack((const unsigned char *)data, len, max, &xml, NULL, err, errlen) < 0)
        goto done;
    doc = dmarc_xml_parse(xml.data, xml.len, err, errlen);
done:
    buf_free(&raw);
    buf_free(&xml);
    return doc;
}

static json_t *sample(const char *name, char *err, size_t errlen)
{
    struct buf in = {0};
    if (read_sample(name, &in) < 0) {
        snprintf(err, errlen, "missing sample");
        return NULL;
    }
    json_t *doc = ingest(in.data, in.len, strstr(name, ".eml") != NULL, 20 << 20, err, errlen);
    buf_free(&in);
    return doc;
}

static const char *get(json_t *doc, const char *obj, const char *key)
{
    return json_string_value(json_object_get(json_object_get(doc, obj), key));
}

static void test_valid_samples(void)
{
    static const struct {
        const char *file, *org, *domain;
        size_t records;
    } ok[] = {
        {"protection.outlook.com_example.com_1711756800_1711843200.xml", "Outlook.com",
         "example.com", 1},
        {"google-report-borschow.eml", "google.com", "borschow.com", 1},
        {"twilight.eml", "google.com", "twlnet.com", 1},
        {"mimecast-weird-gzip.eml", "Mimecast", "ab.id.au", 1},
        {"fastmail.com_example.com_1516060800_1516147199_102675056.xml.gz", "FastMail Pty Ltd",
         "indemed.com", 1},
        {"estadocuenta1.infonacot.gob.mx_example.com_1536853302_1536939702_2940.xml.zip",
         "XYZ Corporation", "example.com", 1},
        {"rfc9990-sample.xml", "Sample Reporter", "example.com", 1},
        {"rfc9990-example.net_example.com_1700000000_1700086399.xml", "example.net", "example.com",
         2},
        {"old_draft_from_wiki.xml", "acme.com", "example.com", 1},
        {"empty_reason.xml", "example.org", "example.com", 1},
        {"report_with_upper_cased_pass.xml", "example.com", "example.com", 1},
        {"163.com_example.com_1337270400_1337356799.20120518163.xml", "163.com", "example.com", 50},
        {"yeah.net_example.com_1337270400_1337356799.20120518.xml", "yeah.net", "example.com", 254},
        {"example.net_example.com_1529366400_1529452799.xml", "example.net", "example.com", 1},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char err[256] = "";
        json_t *doc = sample(ok[i].file, err, sizeof err);
        if (!doc)
            fprintf(stderr, "  %s: %s\n", ok[i].file, err);
        CHECK(doc != NULL);
        if (!doc)
            continue;
        CHECK_STR(get(doc, "report_metadata", "org_name"), ok[i].org);
        CHECK_STR(get(doc, "policy_published", "domain"), ok[i].domain);
        CHECK_INT(json_array_size(json_object_get(doc, "records")), ok[i].records);
        json_decref(doc);
    }
}

static void test_sample_fields(void)
{
    char err[256];
    json_t *doc = sample("rfc9990-sample.xml", err, sizeof err);
    CHECK(doc != NULL);
    json_t *rec = json_array_get(json_object_get(doc, "records"), 0);
    CHECK_STR(json_string_value(json_object_get(rec, "source_ip")), "192.0.2.123");
    CHECK_INT(json_integer_value(json_object_get(rec, "count")), 123);
    CHECK_STR(get(rec, "policy_evaluated", "disposition"), "pass");
    json_t *dkim = json_array_get(json_object_get(json_object_get(rec, "auth_results"), "dkim"), 0);
    CHECK_STR(json_string_value(json_object_get(dkim, "selector")), "abc123");
    CHECK_INT(json_integer_value(json_object_get(
                  json_object_get(json_object_get(doc, "report_metadata"), "date_range"), "end")),
              302918399);
    json_decref(doc);

    /* Upper-case results are normalised; decimal timestamps truncated. */
    doc = sample("report_with_upper_cased_pass.xml", err, sizeof err);
    rec = json_array_get(json_object_get(doc, "records"), 0);
    CHECK_STR(get(rec, "policy_evaluated", "dkim"), "pass");
    json_decref(doc);
    doc = sample("163.com_example.com_1337270400_1337356799.20120518163.xml", err, sizeof err);
    CHECK_INT(json_integer_value(json_object_get(
                  json_object_get(json_object_get(doc, "report_metadata"), "date_range"), "begin")),
              1337270400);
    json_decref(doc);
}

static void test_invalid_samples(void)
{
    static const struct {
        const char *file, *why;
    } bad[] = {
        {"invalid_xml.xml", "not well-formed"},
        {"invalid_utf_8.xml", "not well-formed"},
        {"empty.xml", "neither gzip, zip nor XML"},
        {"bad.com_example.com_1337140800_1337227200.xml", "not well-formed"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256] = "";
        json_t *doc = sample(bad[i].file, err, sizeof err);
        CHECK(doc == NULL);
        if (!strstr(err, bad[i].why))
            fprintf(stderr, "  %s: \"%s\", expected \"%s\"\n", bad[i].file, err, bad[i].why);
        CHECK(strstr(err, bad[i].why) != NULL);
        json_decref(doc);
    }
}

static const char *const GOOD =
    "<feedback><report_metadata><org_name>o</org_name><report_id>r</report_id>"
    "<date_range><begin>1</begin><end>2</end></date_range></report_metadata>"
    "<policy_published><domain>example.test</domain><p>none</p></policy_published>"
    "<record><row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated>"
    "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>"
    "<identifiers><header_from>example.test</header_from></identifiers></record></feedback>";

static void expect_refused(const char *xml, const char *why)
{
    char err[256] = "";
    json_t *doc = dmarc_xml_parse(xml, strlen(xml), err, sizeof err);
    CHECK(doc == NULL);
    if (!strstr(err, why))
        fprintf(stderr, "  got \"%s\", expected \"%s\"\n", err, why);
    CHECK(strstr(err, why) != NULL);
    json_decref(doc);
}

/* GOOD with the first occurrence of from replaced by to. */
static char *variant(const char *from, const char *to)
{
    const char *at = strstr(GOOD, from);
    size_t n = strlen(GOOD) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(at - GOOD), GOOD, to, at + strlen(from));
    return s;
}

static void test_hostile_xml(void)
{
    char err[256];
    json_t *doc = dmarc_xml_parse(GOOD, strlen(GOOD), err, sizeof err);
    CHECK(doc != NULL);
    json_decref(doc);

    expect_refused("<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY a \"aaaaaaaaaa\">"
                   "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                   "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><feedback>&c;</feedback>",
                   "DOCTYPE");
    expect_refused("<!DOCTYPE feedback SYSTEM \"file:///etc/passwd\"><feedback/>", "DOCTYPE");
    expect_refused("<feedback>&xxe;</feedback>", "undefined entity");
    expect_refused("<html><body/></html>", "root element is <html>");
    expect_refused("", "empty");
    struct buf deep = {0};
    for (int i = 0; i < 40; i++)
        buf_puts(&deep, i ? "<a>" : "<feedback>");
    expect_refused(buf_cstr(&deep), "nested deeper");
    buf_free(&deep);
    struct buf longf = {0};
    buf_puts(&longf, "<feedback><version>");
    for (int i = 0; i < 5000; i++)
        buf_puts(&longf, "x");
    buf_puts(&longf, "</version></feedback>");
    expect_refused(buf_cstr(&longf), "too long");
    buf_free(&longf);

    static const struct {
        const char *from, *to, *why;
    } edits[] = {
        {"<report_id>r</report_id>", "", "<report_id> is missing"},
        {"<domain>example.test</domain>", "", "<policy_published><domain> is missing"},
        {"192.0.2.1", "192.0.2.300", "is not an IP address"},
        {"<count>3</count>", "<count>-3</count>", "not a non-negative integer"},
        {"<count>3</count>", "", "record 1: <count> is missing"},
        {"<dkim>pass</dkim>", "<dkim>maybe</dkim>", "not a valid value"},
        {"<disposition>none</disposition>", "", "<disposition> is missing"},
        {"<header_from>example.test</header_from>", "", "<header_from> is missing"},
        {"<begin>1</begin>", "<begin>soon</begin>", "not a non-negative integer"},
        {"<record>", "<recrd>", "no <record>"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *x = variant(edits[i].from, edits[i].to);
        if (strcmp(edits[i].from, "<record>") == 0) {
            /* keep it well-formed: rename the closing tag too */
            char *y = strstr(x, "</record>");
            memcpy(y, "</recrd> ", 9);
        }
        expect_refused(x, edits[i].why);
        free(x);
    }
}

static void gzip_of(const char *data, size_t len, size_t repeat, struct buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
    unsigned char chunk[65536];
    for (size_t r = 0; r <= repeat; r++) {
        z.next_in = (unsigned char *)data;
        z.avail_in = r < repeat ? (uInt)len : 0;
        int flush = r < repeat ? Z_NO_FLUSH : Z_FINISH;
        do {
            z.next_out = chunk;
            z.avail_out = sizeof chunk;
            deflate(&z, flush);
            buf_append(out, chunk, sizeof chunk - z.avail_out);
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
}

static void test_unpack(void)
{
    char err[256];
    struct buf gz = {0}, out = {0};
    gzip_of(GOOD, strlen(GOOD), 1, &gz);
    CHECK_INT(report_unpack((unsigned char *)gz.data, gz.len, 1 << 20, &out, NULL, err, sizeof err),
              0);
    CHECK_MEM(out.data, out.len, GOOD, strlen(GOOD));

    /* Truncated: refused, not taken as a short report. */
    buf_reset(&out);
    CHECK_INT(
        report_unpack((unsigned char *)gz.data, gz.len / 2, 1 << 20, &out, NULL, err, sizeof err),
        -1);
    CHECK(strstr(err, "truncated") != NULL);

    /* A gzip bomb: 64 MiB of zeros in about 64 KiB, against a 1 MiB cap. */
    static char zeros[65536];
    buf_free(&gz);
    gzip_of(zeros, sizeof zeros, 1024, &gz);
    CHECK(gz.len < 200000);
    buf_reset(&out);
    CHECK_INT(report_unpack((unsigned char *)gz.data, gz.len, 1 << 20, &out, NULL, err, sizeof err),
              -1);
    CHECK(strstr(err, "more than 1048576 bytes") != NULL);
    CHECK(out.len <= (1 << 20));

    /* Plain XML over the cap, and garbage. */
    buf_reset(&out);
    CHECK_INT(report_unpack((const unsigned char *)GOOD, strlen(GOOD), 1024 / 8, &out, NULL, err,
                            sizeof err),
              -1);
    CHECK_INT(report_unpack((const unsigned char *)"PK\3\4", 4, 1024, &out, NULL, err, sizeof err),
              -1);
    CHECK_INT(
        report_unpack((const unsigned char *)"\x1f\x8b", 2, 1024, &out, NULL, err, sizeof err), -1);
    buf_free(&gz);
    buf_free(&out);
}

static void test_mail(void)
{
    char err[256];
    struct buf out = {0};
    const char *plain = "From: a@example.net\r\nSubject: hi\r\n\r\nno report here\r\n";
    CHECK_INT(report_mail_attachment(plain, strlen(plain), &out, err, sizeof err), -1);
    CHECK(strstr(err, "no DMARC report attachment") != NULL);

    /* An empty attachment (found by the fuzzer: GMime hands out no buffer for it). */
    const char *empty = "From: a@example.net\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: application/gzip\r\n\r\n";
    CHECK_INT(report_mail_attachment(empty, strlen(empty), &out, err, sizeof err), -1);
    CHECK(strstr(err, "empty") != NULL);

    /* A report forwarded as message/rfc822 inside a multipart. */
    struct buf m = {0};
    buf_printf(&m,
               "From: a@example.net\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
               "--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
               "--b1\r\nContent-Type: message/rfc822\r\n\r\n"
               "From: r@example.org\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n"
               "--b2\r\nContent-Type: text/xml\r\n\r\n%s\r\n--b2--\r\n"
               "--b1--\r\n",
               GOOD);
    buf_reset(&out);
    CHECK_INT(report_mail_attachment(m.data, m.len, &out, err, sizeof err), 0);
    CHECK(strstr(buf_cstr(&out), "<feedback>") != NULL);
    buf_free(&m);
    buf_free(&out);
}

static void test_record_tags(void)
{
    const char *rec = "v=DMARC1;p=reject ; sp = none; rua=mailto:a@example.com!10m, "
                      "mailto:b@example.net,https://x.example/;  fo=1";
    char *v = dmarc_record_tag(rec, "p");
    CHECK_STR(v, "reject");
    free(v);
    v = dmarc_record_tag(rec, "sp");
    CHECK_STR(v, "none");
    free(v);
    v = dmarc_record_tag(rec, "pct");
    CHECK(v == NULL);
    v = dmarc_record_tag(rec, "rua");
    char **addrs;
    size_t n = dmarc_rua_mailtos(v, &addrs);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(addrs[0], "a@example.com");
        CHECK_STR(addrs[1], "b@example.net");
    }
    for (size_t i = 0; i < n; i++)
        free(addrs[i]);
    free(addrs);
    free(v);
    CHECK_INT(dmarc_rua_mailtos("mailto:, mailto:nobody", &addrs), 0);
    free(addrs);

    /* What we send, our own parser takes (gzip round trip included). */
    struct buf gz = {0}, out = {0};
    report_gzip(GOOD, strlen(GOOD), &gz);
    char err[256];
    CHECK_INT(report_unpack((unsigned char *)gz.data, gz.len, 1 << 20, &out, NULL, err, sizeof err),
              0);
    CHECK_MEM(out.data, out.len, GOOD, strlen(GOOD));
    buf_free(&gz);
    buf_free(&out);
}

int main(void)
{
    g_mime_init();
    test_valid_samples();
    test_sample_fields();
    test_invalid_samples();
    test_hostile_xml();
    test_unpack();
    test_mail();
    test_record_tags();
    g_mime_shutdown();
    return CHECK_DONE();
}
