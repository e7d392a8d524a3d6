#include "dmarc/report_mail.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <string.h>

#define MAX_NESTING 8

static int name_ends(const char *name, const char *suffix)
{
    size_t n = name ? strlen(name) : 0, s = strlen(suffix);
    return n >= s && g_ascii_strcasecmp(name + n - s, suffix) == 0;
}

static int is_report_part(GMimeObject *obj)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *type = g_mime_content_type_get_media_type(ct);
    const char *sub = g_mime_content_type_get_media_subtype(ct);
    if (!type || !sub)
        return 0;
    static const char *const app[] = {"gzip", "x-gzip", "zip", "x-zip", "x-zip-compressed",
                                      "xml",  NULL};
    if (g_ascii_strcasecmp(type, "application") == 0) {
        for (int i = 0; app[i]; i++)
            if (g_ascii_strcasecmp(sub, app[i]) == 0)
                return 1;
        if (g_ascii_strcasecmp(sub, "octet-stream") == 0) {
            const char *name = g_mime_part_get_filename(GMIME_PART(obj));
            return name_ends(name, ".xml") || name_ends(name, ".gz") || name_ends(name, ".zip");
        }
        return 0;
    }
    return g_ascii_strcasecmp(type, "text") == 0 && g_ascii_strcasecmp(sub, "xml") == 0;
}

/* Depth-first search; returns the part (borrowed) or NULL. */
static GMimePart *find(GMimeObject *obj, int depth)
{
    if (!obj || depth > MAX_NESTING)
        return NULL;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++) {
            GMimePart *p = find(g_mime_multipart_get_part(mp, i), depth + 1);
            if (p)
                return p;
        }
        return NULL;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        return inner ? find(g_mime_message_get_mime_part(inner), depth + 1) : NULL;
    }
    if (GMIME_IS_PART(obj) && is_report_part(obj))
        return GMIME_PART(obj);
    return NULL;
}

int report_mail_attachment(const char *msg, size_t len, struct buf *out, char *err, size_t errlen)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(msg ? msg : "", len);
    GMimeParser *parser = g_mime_parser_new_with_stream(st);
    GMimeMessage *gm = g_mime_parser_construct_message(parser, NULL);
    int rc = -1;
    GMimePart *part = gm ? find(g_mime_message_get_mime_part(gm), 0) : NULL;
    if (!gm) {
        snprintf(err, errlen, "message cannot be parsed as MIME");
    } else if (!part) {
        snprintf(err, errlen, "no DMARC report attachment (gzip, zip or XML part) in the message");
    } else {
        GMimeDataWrapper *content = g_mime_part_get_content(part);
        if (!content) {
            snprintf(err, errlen, "report attachment is empty");
        } else {
            GMimeStream *mem = g_mime_stream_mem_new();
            g_mime_data_wrapper_write_to_stream(content, mem);
            GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
            if (bytes->len == 0) {
                snprintf(err, errlen, "report attachment is empty");
            } else {
                buf_append(out, bytes->data, bytes->len);
                rc = 0;
            }
            g_object_unref(mem);
        }
    }
    if (gm)
        g_object_unref(gm);
    g_object_unref(parser);
    g_object_unref(st);
    return rc;
}
