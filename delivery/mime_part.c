#include "delivery/mime_part.h"

GMimePart *mime_part_new(const char *type, const char *subtype, const void *data, size_t len)
{
    GMimePart *part = g_mime_part_new_with_type(type, subtype);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
    GMimeDataWrapper *content =
        g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
    g_mime_part_set_content(part, content);
    g_object_unref(content);
    g_object_unref(stream);
    return part;
}

void mime_message_write(GMimeMessage *msg, struct buf *out)
{
    GMimeFormatOptions *opt = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(opt, GMIME_NEWLINE_FORMAT_DOS);
    char *text = g_mime_object_to_string(GMIME_OBJECT(msg), opt);
    buf_puts(out, text);
    g_free(text);
    g_mime_format_options_free(opt);
}
