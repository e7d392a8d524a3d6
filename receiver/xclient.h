/* The Postfix XCLIENT command (https://www.postfix.org/XCLIENT_README.html): an SMTP proxy
 * tells the server who the real client is. Pure parser; the session applies the result. */
#ifndef SLUICE_XCLIENT_H
#define SLUICE_XCLIENT_H

/* What EHLO advertises after "XCLIENT". */
#define XCLIENT_ATTRS "ADDR NAME PORT PROTO HELO LOGIN DESTADDR DESTPORT"

/* For each attribute: 0 absent, 1 given (value below), 2 [UNAVAILABLE] or [TEMPUNAVAIL]. */
struct xclient_attrs {
    int addr_set, port_set, name_set, helo_set, proto_set;
    char addr[46]; /* canonical numeric IPv4/IPv6 */
    int port;
    char name[256]; /* printable ASCII, no spaces: safe for Received: */
    char helo[256];
    int esmtp; /* PROTO=ESMTP */
};

/* Parses the argument of XCLIENT (the text after the verb). Returns 0, or -1 with *reply set to
 * a complete SMTP reply. Nothing is applied unless every attribute is valid. */
int xclient_parse(const char *arg, struct xclient_attrs *a, const char **reply);

#endif
