/* Walks the report with expat, keeping the path of open elements; leaf values are placed by
 * path into the JSON document and validated when the document ends. */
#include "dmarc/dmarc_xml.h"
#include "core/buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <expat.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 12

struct parse {
    XML_Parser xp;
    char names[MAX_DEPTH][32];
    int depth;
    struct buf text;
    json_t *doc, *meta, *policy, *records;
    json_t *rec;      /* the record being read */
    json_t *auth_obj; /* the current auth_results/dkim or spf entry */
    json_t *reason;   /* the current policy_evaluated/reason */
    char err[256];
};

static void fail(struct parse *p, const char *fmt, const char *a)
{
    if (!p->err[0])
        snprintf(p->err, sizeof p->err, fmt, a);
    XML_StopParser(p->xp, XML_FALSE);
}

/* "ns1:feedback" -> "feedback". */
static const char *local_name(const char *n)
{
    const char *c = strrchr(n, ':');
    return c ? c + 1 : n;
}

/* Compares the open path (from the root) with the '/'-separated spec. */
static int at(const struct parse *p, const char *spec)
{
    int i = 0;
    while (*spec) {
        const char *slash = strchr(spec, '/');
        size_t n = slash ? (size_t)(slash - spec) : strlen(spec);
        if (i >= p->depth || strlen(p->names[i]) != n || strncmp(p->names[i], spec, n) != 0)
            return 0;
        i++;
        spec += n + (slash ? 1 : 0);
    }
    return i == p->depth;
}

static json_t *obj_child(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (!o) {
        o = json_object();
        json_object_set_new(parent, key, o);
    }
    return o;
}

static json_t *arr_child(json_t *parent, const char *key)
{
    json_t *a = json_object_get(parent, key);
    if (!a) {
        a = json_array();
        json_object_set_new(parent, key, a);
    }
    return a;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    struct parse *p = ud;
    const char *ln = local_name(name);
    if (p->depth == MAX_DEPTH) {
        fail(p, "elements nested deeper than %s levels", "12");
        return;
    }
    if (p->depth == 0 && strcmp(ln, "feedback") != 0) {
        fail(p, "root element is <%s>, not <feedback>", ln);
        return;
    }
    snprintf(p->names[p->depth], sizeof p->names[0], "%s", ln);
    p->depth++;
    buf_reset(&p->text);
    if (at(p, "feedback/record")) {
        if (json_array_size(p->records) >= DMARC_XML_MAX_RECORDS) {
            fail(p, "more than %s records", "100000");
            return;
        }
        p->rec = json_object();
        json_array_append_new(p->records, p->rec);
    } else if (p->rec && (at(p, "feedback/record/auth_results/dkim") ||
                          at(p, "feedback/record/auth_results/spf"))) {
        p->auth_obj = json_object();
        json_array_append_new(arr_child(obj_child(p->rec, "auth_results"), ln), p->auth_obj);
    } else if (p->rec && at(p, "feedback/record/row/policy_evaluated/reason")) {
        p->reason = json_object();
        json_array_append_new(arr_child(obj_child(p->rec, "policy_evaluated"), "reason"),
                              p->reason);
    }
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct parse *p = ud;
    if (p->text.len + (size_t)len > DMARC_XML_MAX_FIELD) {
        fail(p, "<%s> is too long", p->depth ? p->names[p->depth - 1] : "?");
        return;
    }
    buf_append(&p->text, s, (size_t)len);
}

/* The element's text without surrounding white space, as a new JSON string (valid UTF-8:
 * expat hands out UTF-8). */
static json_t *trimmed(struct parse *p)
{
    const char *s = buf_cstr(&p->text);
    size_t n = p->text.len;
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    return json_stringn(s, n);
}

static json_t *lowered(struct parse *p)
{
    json_t *v = trimmed(p);
    char *s = (char *)json_string_value(v);
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
    return v;
}

static void put_integer(struct parse *p, json_t *obj, const char *key)
{
    json_t *v = trimmed(p);
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    /* Some reporters (163.com, yeah.net) write timestamps as "1337270400.0". */
    if (end != s && *end == '.') {
        end++;
        while (*end >= '0' && *end <= '9')
            end++;
    }
    if (!*s || *end || errno || n < 0 || !(*s >= '0' && *s <= '9'))
        fail(p, "<%s> is not a non-negative integer", key);
    else
        json_object_set_new(obj, key, json_integer(n));
    json_decref(v);
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct parse *p = ud;
    if (p->depth == 0)
        return;
    const char *ln = p->names[p->depth - 1];
    static const char *const meta_keys[] = {"org_name",  "email",     "extra_contact_info",
                                            "report_id", "generator", NULL};
    static const char *const id_keys[] = {"header_from", "envelope_from", "envelope_to", NULL};
    if (p->depth == 3 && strcmp(p->names[1], "report_metadata") == 0) {
        for (int i = 0; meta_keys[i]; i++)
            if (strcmp(ln, meta_keys[i]) == 0)
                json_object_set_new(p->meta, ln, trimmed(p));
        if (strcmp(ln, "error") == 0)
            json_array_append_new(arr_child(p->meta, "error"), trimmed(p));
    } else if (at(p, "feedback/report_metadata/date_range/begin") ||
               at(p, "feedback/report_metadata/date_range/end")) {
        put_integer(p, obj_child(p->meta, "date_range"), ln);
    } else if (p->depth == 3 && strcmp(p->names[1], "policy_published") == 0) {
        if (strcmp(ln, "pct") == 0)
            put_integer(p, p->policy, ln);
        else if (strcmp(ln, "domain") == 0)
            json_object_set_new(p->policy, ln, trimmed(p));
        else
            json_object_set_new(p->policy, ln, lowered(p));
    } else if (at(p, "feedback/version")) {
        json_object_set_new(p->doc, "version", trimmed(p));
    } else if (p->rec && at(p, "feedback/record/row/source_ip")) {
        json_object_set_new(p->rec, "source_ip", trimmed(p));
    } else if (p->rec && at(p, "feedback/record/row/count")) {
        put_integer(p, p->rec, "count");
    } else if (p->rec && p->depth == 5 && strcmp(p->names[3], "policy_evaluated") == 0 &&
               strcmp(p->names[2], "row") == 0) {
        if (strcmp(ln, "disposition") == 0 || strcmp(ln, "dkim") == 0 || strcmp(ln, "spf") == 0)
            json_object_set_new(obj_child(p->rec, "policy_evaluated"), ln, lowered(p));
    } else if (p->reason && p->depth == 6 && strcmp(p->names[4], "reason") == 0) {
        if (strcmp(ln, "type") == 0)
            json_object_set_new(p->reason, ln, lowered(p));
        else if (strcmp(ln, "comment") == 0)
            json_object_set_new(p->reason, ln, trimmed(p));
    } else if (p->rec && p->depth == 4 && strcmp(p->names[2], "identifiers") == 0) {
        for (int i = 0; id_keys[i]; i++)
            if (strcmp(ln, id_keys[i]) == 0)
                json_object_set_new(obj_child(p->rec, "identifiers"), ln, trimmed(p));
    } else if (p->auth_obj && p->depth == 5 && strcmp(p->names[2], "auth_results") == 0) {
        if (strcmp(ln, "result") == 0 || strcmp(ln, "scope") == 0)
            json_object_set_new(p->auth_obj, ln, lowered(p));
        else if (strcmp(ln, "domain") == 0 || strcmp(ln, "selector") == 0 ||
                 strcmp(ln, "human_result") == 0)
            json_object_set_new(p->auth_obj, ln, trimmed(p));
    }
    if (at(p, "feedback/record"))
        p->rec = NULL;
    else if (p->depth == 4 && p->rec && strcmp(p->names[2], "auth_results") == 0)
        p->auth_obj = NULL;
    else if (p->depth == 5 && strcmp(ln, "reason") == 0)
        p->reason = NULL;
    p->depth--;
    buf_reset(&p->text);
    (void)name;
}

/* No report needs a DTD; refusing it means no entity can be declared, let alone expanded. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int internal)
{
    fail(ud, "DOCTYPE declarations are not allowed in a report%s", "");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
                              int len, const XML_Char *base, const XML_Char *sysid,
                              const XML_Char *pubid, const XML_Char *notation)
{
    fail(ud, "entity declarations are not allowed in a report%s", "");
}

/* windows-1252 (seen in real reports): expat knows only UTF-8/16, ISO-8859-1 and ASCII. */
static int XMLCALL on_unknown_encoding(void *data, const XML_Char *name, XML_Encoding *info)
{
    static const unsigned short cp1252[32] = {
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};
    if (strcasecmp(name, "windows-1252") != 0 && strcasecmp(name, "cp1252") != 0)
        return XML_STATUS_ERROR;
    for (int i = 0; i < 256; i++)
        info->map[i] = (i >= 0x80 && i < 0xA0) ? cp1252[i - 0x80] : i;
    info->data = NULL;
    info->convert = NULL;
    info->release = NULL;
    return XML_STATUS_OK;
}

static int require(json_t *obj, const char *key, const char *what, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    if (!v || (json_is_string(v) && json_string_length(v) == 0)) {
        snprintf(err, errlen, "%s is missing", what);
        return -1;
    }
    return 0;
}

static int one_of(const char *v, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (strcmp(v, *allowed) == 0)
            return 1;
    return 0;
}

static int validate_record(json_t *rec, size_t i, char *err, size_t errlen)
{
    static const char *const dispositions[] = {"none", "quarantine", "reject", "pass", NULL};
    static const char *const pass_fail[] = {"pass", "fail", NULL};
    char what[64];
    json_t *pe = json_object_get(rec, "policy_evaluated");
    json_t *ids = json_object_get(rec, "identifiers");
    snprintf(what, sizeof what, "record %zu: <source_ip>", i + 1);
    if (require(rec, "source_ip", what, err, errlen) < 0)
        return -1;
    const char *ip = json_string_value(json_object_get(rec, "source_ip"));
    unsigned char addr[16];
    if (inet_pton(AF_INET, ip, addr) != 1 && inet_pton(AF_INET6, ip, addr) != 1) {
        snprintf(err, errlen, "record %zu: source_ip '%.64s' is not an IP address", i + 1, ip);
        return -1;
    }
    snprintf(what, sizeof what, "record %zu: <count>", i + 1);
    if (require(rec, "count", what, err, errlen) < 0)
        return -1;
    const char *keys[] = {"disposition", "dkim", "spf"};
    for (int k = 0; k < 3; k++) {
        snprintf(what, sizeof what, "record %zu: <policy_evaluated><%s>", i + 1, keys[k]);
        if (!pe || require(pe, keys[k], what, err, errlen) < 0) {
            snprintf(err, errlen, "%s is missing", what);
            return -1;
        }
        const char *v = json_string_value(json_object_get(pe, keys[k]));
        if (!one_of(v, k == 0 ? dispositions : pass_fail)) {
            snprintf(err, errlen, "record %zu: %s '%.32s' is not a valid value", i + 1, keys[k], v);
            return -1;
        }
    }
    snprintf(what, sizeof what, "record %zu: <identifiers><header_from>", i + 1);
    if (!ids || require(ids, "header_from", what, err, errlen) < 0) {
        snprintf(err, errlen, "%s is missing", what);
        return -1;
    }
    if (!json_object_get(rec, "auth_results"))
        json_object_set_new(rec, "auth_results", json_pack("{s:[], s:[]}", "dkim", "spf"));
    return 0;
}

static int validate(json_t *doc, char *err, size_t errlen)
{
    json_t *meta = json_object_get(doc, "report_metadata");
    json_t *policy = json_object_get(doc, "policy_published");
    json_t *range = json_object_get(meta, "date_range");
    if (require(meta, "org_name", "<report_metadata><org_name>", err, errlen) < 0 ||
        require(meta, "report_id", "<report_metadata><report_id>", err, errlen) < 0 || !range ||
        require(range, "begin", "<date_range><begin>", err, errlen) < 0 ||
        require(range, "end", "<date_range><end>", err, errlen) < 0 ||
        require(policy, "domain", "<policy_published><domain>", err, errlen) < 0 ||
        require(policy, "p", "<policy_published><p>", err, errlen) < 0) {
        if (!range)
            snprintf(err, errlen, "<report_metadata><date_range> is missing");
        return -1;
    }
    json_t *records = json_object_get(doc, "records");
    if (json_array_size(records) == 0) {
        snprintf(err, errlen, "report has no <record>");
        return -1;
    }
    size_t i;
    json_t *rec;
    json_array_foreach(records, i, rec)
    {
        if (validate_record(rec, i, err, errlen) < 0)
            return -1;
    }
    return 0;
}

json_t *dmarc_xml_parse(const char *xml, size_t len, char *err, size_t errlen)
{
    struct parse p;
    memset(&p, 0, sizeof p);
    p.xp = XML_ParserCreate(NULL);
    if (!p.xp) {
        snprintf(err, errlen, "cannot create the XML parser");
        return NULL;
    }
    p.doc = json_object();
    p.meta = obj_child(p.doc, "report_metadata");
    p.policy = obj_child(p.doc, "policy_published");
    p.records = arr_child(p.doc, "records");
    XML_SetUserData(p.xp, &p);
    XML_SetElementHandler(p.xp, on_start, on_end);
    XML_SetCharacterDataHandler(p.xp, on_text);
    XML_SetStartDoctypeDeclHandler(p.xp, on_doctype);
    XML_SetEntityDeclHandler(p.xp, on_entity);
    XML_SetParamEntityParsing(p.xp, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetUnknownEncodingHandler(p.xp, on_unknown_encoding, NULL);
    int ok = 1;
    if (len == 0) {
        snprintf(err, errlen, "report is empty");
        ok = 0;
    } else {
        /* expat takes int lengths: feed in slices. */
        size_t off = 0;
        while (ok) {
            size_t n = len - off > (1u << 30) ? (1u << 30) : len - off;
            int last = off + n == len;
            if (XML_Parse(p.xp, xml + off, (int)n, last) != XML_STATUS_OK) {
                if (p.err[0])
                    snprintf(err, errlen, "line %lu: %s",
                             (unsigned long)XML_GetCurrentLineNumber(p.xp), p.err);
                else
                    snprintf(err, errlen, "line %lu: %s",
                             (unsigned long)XML_GetCurrentLineNumber(p.xp),
                             XML_ErrorString(XML_GetErrorCode(p.xp)));
                ok = 0;
            }
            off += n;
            if (last)
                break;
        }
    }
    if (ok && validate(p.doc, err, errlen) < 0)
        ok = 0;
    XML_ParserFree(p.xp);
    buf_free(&p.text);
    if (!ok) {
        json_decref(p.doc);
        return NULL;
    }
    return p.doc;
}
