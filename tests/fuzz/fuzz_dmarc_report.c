/* libFuzzer target: the DMARC report ingest path. Any bytes are tried both as the attachment
 * itself (gzip, zip or XML: report_unpack then dmarc_xml_parse) and as a mail carrying one
 * (report_mail_attachment first). The decompression cap must hold, and an accepted document
 * must have the shape the store and the metrics rely on. */
#include "core/buf.h"
#include "dmarc/dmarc_metrics.h"
#include "dmarc/dmarc_xml.h"
#include "dmarc/report_mail.h"
#include "dmarc/unpack.h"

#include <gmime/gmime.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP (256 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_mime_init();
    return 0;
}

static void check_doc(json_t *doc)
{
    json_t *records = json_object_get(doc, "records");
    if (!json_is_array(records) || json_array_size(records) == 0)
        abort();
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        if (!json_is_string(json_object_get(rec, "source_ip")) ||
            !json_is_integer(json_object_get(rec, "count")) ||
            !json_is_string(json_object_get(json_object_get(rec, "policy_evaluated"), "dkim")))
            abort();
    }
    if (!json_is_string(json_object_get(json_object_get(doc, "policy_published"), "domain")))
        abort();
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text)
        abort();
    free(text);
}

static void attachment(const char *data, size_t len)
{
    struct buf xml = {0};
    char err[256];
    if (report_unpack((const unsigned char *)data, len, CAP, &xml, NULL, err, sizeof err) == 0) {
        if (xml.len > CAP)
            abort();
        json_t *doc = dmarc_xml_parse(xml.data, xml.len, err, sizeof err);
        if (doc) {
            check_doc(doc);
            dmarc_metrics_add_report(doc);
            json_decref(doc);
        } else if (!err[0]) {
            abort(); /* a refusal always says why */
        }
    }
    buf_free(&xml);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    attachment((const char *)data, size);
    struct buf raw = {0};
    char err[256];
    if (report_mail_attachment((const char *)data, size, &raw, err, sizeof err) == 0)
        attachment(raw.data, raw.len);
    buf_free(&raw);
    /* Keep the metrics registry from growing across runs (and leaking at exit). */
    dmarc_metrics_shutdown();
    return 0;
}
