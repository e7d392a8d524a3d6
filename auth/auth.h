/* Sender authentication: SPF (RFC 7208), DKIM (RFC 6376) and DMARC (RFC 7489) for one message,
 * with every lookup through auth/dns. The verdicts land in m->verdicts in Amazon SES's terms,
 * the details in m->auth, and the result headers (Authentication-Results, Received-SPF,
 * X-Sluice-*-Verdict, X-Sluice-DMARC-Policy) are prepended with message_add_header.
 * X-Sluice-DMARC-Policy is present only when the DMARC verdict is FAIL or GRAY, as SES gives
 * dmarcPolicy only then. Sender-supplied copies of our headers (X-Sluice-*, and
 * Authentication-Results under our authserv-id) are removed from the content, after DKIM has
 * verified it as signed. */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct dns_cfg;
struct message;

/* Results as RFC 8601 names them; the *_name() functions give those names. */
enum spf_res {
    SPF_RES_NONE,
    SPF_RES_NEUTRAL,
    SPF_RES_PASS,
    SPF_RES_FAIL,
    SPF_RES_SOFTFAIL,
    SPF_RES_TEMPERROR,
    SPF_RES_PERMERROR
};
enum dkim_res {
    DKIM_RES_NONE,
    DKIM_RES_PASS,
    DKIM_RES_FAIL,
    DKIM_RES_NEUTRAL,
    DKIM_RES_TEMPERROR,
    DKIM_RES_PERMERROR
};
enum dmarc_res {
    DMARC_RES_NONE,
    DMARC_RES_PASS,
    DMARC_RES_FAIL,
    DMARC_RES_TEMPERROR,
    DMARC_RES_PERMERROR
};

struct dkim_sig_detail {
    char *domain;   /* d=, "" when the signature had none */
    char *selector; /* s= */
    enum dkim_res result;
    char *reason; /* short text for the header comment, NULL when none */
};

/* Everything the checks found, owned by the message (freed by message_free). */
struct auth_details {
    enum spf_res spf;
    bool spf_helo;      /* the HELO identity was checked (MAIL FROM was <>) */
    char *spf_identity; /* the checked identity: MAIL FROM, or postmaster@HELO */
    char *spf_domain;   /* its domain */
    char *spf_reason;   /* NULL or a short explanation */

    struct dkim_sig_detail *sigs;
    size_t nsigs;

    enum dmarc_res dmarc;
    char *from_domain; /* RFC5322.From domain, NULL when none could be found */
    char p, sp;        /* the record's p= and sp= ('n', 'q', 'r'), 0 without a record */
    char *dmarc_reason;
    /* For aggregate reports (RFC 7489 §7.2): the DMARC record as published, the domain it was
     * found at (the From domain or its organizational domain), NULL without a record; and
     * whether an aligned DKIM signature / aligned SPF passed. */
    char *dmarc_record;
    char *dmarc_record_domain;
    bool dmarc_dkim_aligned, dmarc_spf_aligned;
};

/* Runs on a worker thread (it blocks on DNS, at most dns { timeout_ms } per lookup). hostname
 * (server { hostname }, may be NULL) is the authserv-id when m has none of its own; dns is
 * where the lookups go; dmarc_tree_walk is dmarc { tree_walk }. */
void auth_check(const char *hostname, const struct dns_cfg *dns, bool dmarc_tree_walk,
                struct message *m);
void auth_details_free(struct auth_details *a);

const char *spf_res_name(enum spf_res r);
const char *dkim_res_name(enum dkim_res r);
const char *dmarc_res_name(enum dmarc_res r);

/* SPF alone, with explicit inputs: ip is the client's numeric address (IPv4 or IPv6), helo
 * the HELO/EHLO argument (may be NULL), mail_from the MAIL FROM address ("" for <>). Loopback
 * addresses are judged like any other address. Fills the spf fields of a. Call dns_begin()
 * first. */
void spf_check(const char *ip, const char *helo, const char *mail_from, struct auth_details *a);

#endif
