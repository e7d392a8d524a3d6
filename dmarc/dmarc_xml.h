/* Parser and validator for DMARC aggregate reports (RFC 7489 Appendix C, and the RFC 9990
 * shape: unknown elements are ignored, namespace prefixes stripped). The result is one JSON
 * object: {report_metadata, policy_published, records}. expat is run with DOCTYPEs refused, so
 * no entity (internal or external) is ever expanded. */
#ifndef SLUICE_DMARC_DMARC_XML_H
#define SLUICE_DMARC_DMARC_XML_H

#include <stddef.h>

struct json_t;

#define DMARC_XML_MAX_RECORDS 100000
#define DMARC_XML_MAX_FIELD 2048

/* Parses xml[0..len). Returns a new JSON object (caller decrefs), or NULL with the reason in
 * err ("line N: ..." for XML errors, "record N: ..." for invalid rows). */
struct json_t *dmarc_xml_parse(const char *xml, size_t len, char *err, size_t errlen);

#endif
