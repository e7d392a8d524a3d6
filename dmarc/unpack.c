/* gzip and zip decoding for report attachments. zip is read from its local file headers (no
 * central directory walk): reporters send one small entry, and the local headers are all the
 * inflater needs. Every size is checked against the input before it is used. */
#include "dmarc/unpack.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const unsigned char *p)
{
    return le16(p) | le16(p + 2) << 16;
}

/* Inflates in[0..len) (windowBits selects gzip or raw deflate) onto out, refusing output
 * beyond max. *used gets the input consumed. Returns 0 or -1 with err set. */
static int inflate_capped(const unsigned char *in, size_t len, int window_bits, size_t max,
                          struct buf *out, size_t *used, char *err, size_t errlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, window_bits) != Z_OK) {
        snprintf(err, errlen, "cannot initialise zlib");
        return -1;
    }
    size_t start = out->len;
    int rc = -1;
    z.next_in = (unsigned char *)in;
    size_t left = len;
    for (;;) {
        /* zlib counts in uInt: feed large inputs in slices. */
        if (z.avail_in == 0 && left > 0) {
            z.avail_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
            left -= z.avail_in;
        }
        unsigned char chunk[16384];
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t got = sizeof chunk - z.avail_out;
        if (out->len - start + got > max) {
            snprintf(err, errlen, "report decompresses to more than %zu bytes", max);
            break;
        }
        buf_append(out, chunk, got);
        if (zr == Z_STREAM_END) {
            rc = 0;
            break;
        }
        if (zr == Z_BUF_ERROR && z.avail_in == 0 && left == 0) {
            snprintf(err, errlen, "compressed data is truncated");
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            snprintf(err, errlen, "corrupt compressed data (%s)", z.msg ? z.msg : "zlib error");
            break;
        }
    }
    if (used)
        *used = (size_t)(z.next_in - in);
    inflateEnd(&z);
    return rc;
}

static int ends_with_xml(const char *name, size_t n)
{
    return n >= 4 && strncasecmp(name + n - 4, ".xml", 4) == 0;
}

/* The first entry named *.xml, or the first file entry when none is. */
static int unzip(const unsigned char *d, size_t len, size_t max, struct buf *out, char *err,
                 size_t errlen)
{
    size_t pos = 0, base = out->len;
    int entries = 0;
    const unsigned char *first = NULL;
    for (;;) {
        if (pos + 30 > len || le32(d + pos) != 0x04034b50)
            break; /* central directory or end: no more local entries */
        if (++entries > UNPACK_MAX_ZIP_ENTRIES) {
            snprintf(err, errlen, "zip has more than %d entries", UNPACK_MAX_ZIP_ENTRIES);
            return -1;
        }
        const unsigned char *h = d + pos;
        uint32_t flags = le16(h + 6), method = le16(h + 8), crc = le32(h + 14);
        uint32_t csize = le32(h + 18), namelen = le16(h + 26), extralen = le16(h + 28);
        size_t data_at = pos + 30 + namelen + extralen;
        if (data_at > len) {
            snprintf(err, errlen, "zip entry header is truncated");
            return -1;
        }
        const char *name = (const char *)h + 30;
        int is_dir = namelen > 0 && name[namelen - 1] == '/';
        int wanted = !is_dir && ends_with_xml(name, namelen);
        if (flags & 1) {
            snprintf(err, errlen, "zip entry is encrypted");
            return -1;
        }
        if (csize == 0xffffffffu) {
            snprintf(err, errlen, "zip64 entries are not supported");
            return -1;
        }
        /* Bit 3: sizes follow the data; only deflate can be walked without them. */
        int sizes_later = (flags & 8) != 0;
        if (wanted || (!is_dir && !first)) {
            if (!wanted)
                first = h;
            else
                out->len = base; /* drop a fallback entry decoded earlier */
            size_t before = out->len, used = 0;
            if (method == 8) {
                size_t avail = sizes_later ? len - data_at : csize;
                if (!sizes_later && csize > len - data_at) {
                    snprintf(err, errlen, "zip entry data is truncated");
                    return -1;
                }
                if (inflate_capped(d + data_at, avail, -MAX_WBITS, max, out, &used, err, errlen) <
                    0)
                    return -1;
            } else if (method == 0 && !sizes_later) {
                if (csize > len - data_at) {
                    snprintf(err, errlen, "zip entry data is truncated");
                    return -1;
                }
                if (csize > max) {
                    snprintf(err, errlen, "report decompresses to more than %zu bytes", max);
                    return -1;
                }
                buf_append(out, d + data_at, csize);
                used = csize;
            } else {
                snprintf(err, errlen, "zip compression method %u is not supported", method);
                return -1;
            }
            if (!sizes_later) {
                uLong got = crc32(0L, (const Bytef *)out->data + before, (uInt)(out->len - before));
                if (got != crc) {
                    snprintf(err, errlen, "zip entry fails its CRC check");
                    return -1;
                }
            }
            if (wanted)
                return 0;
            /* Not an .xml name: keep it in case no better entry follows. */
            if (sizes_later) /* cannot find the next header reliably: take this one */
                return 0;
            pos = data_at + used;
            continue;
        }
        if (sizes_later) {
            snprintf(err, errlen, "zip entry without sizes before the report entry");
            return -1;
        }
        if (csize > len - data_at)
            break;
        pos = data_at + csize;
    }
    if (first)
        return 0;
    snprintf(err, errlen, entries ? "zip holds no report file" : "not a readable zip archive");
    return -1;
}

int report_unpack(const unsigned char *data, size_t len, size_t max, struct buf *out,
                  const char **kind, char *err, size_t errlen)
{
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        if (kind)
            *kind = "gzip";
        return inflate_capped(data, len, 16 + MAX_WBITS, max, out, NULL, err, errlen);
    }
    if (len >= 4 && le32(data) == 0x04034b50) {
        if (kind)
            *kind = "zip";
        return unzip(data, len, max, out, err, errlen);
    }
    if (kind)
        *kind = "xml";
    size_t i = 0;
    if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    if (i >= len || data[i] != '<') {
        snprintf(err, errlen, "attachment is neither gzip, zip nor XML");
        return -1;
    }
    if (len > max) {
        snprintf(err, errlen, "report is larger than %zu bytes", max);
        return -1;
    }
    buf_append(out, data, len);
    return 0;
}

void report_gzip(const void *data, size_t len, struct buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)len; /* reports are far below 4 GiB */
    unsigned char chunk[16384];
    int zr;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        zr = deflate(&z, Z_FINISH);
        buf_append(out, chunk, sizeof chunk - z.avail_out);
    } while (zr == Z_OK);
    deflateEnd(&z);
}
