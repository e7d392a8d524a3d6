/* Spam and virus scanning of a message before its rules run (SES ScanEnabled): rspamd gives
 * the spam verdict, clamd the virus verdict. Called on a worker thread, once per message. */
#ifndef SLUICE_SCAN_H
#define SLUICE_SCAN_H

struct rule_set;
struct message;

/* scan { rspamd, clamd, timeout_ms, max_size } (parsed by config/config_scan.c). line is 0 when
 * absent. */
struct scan_cfg {
    int line;
    char *rspamd;         /* base URL "http://host:port", NULL when not configured */
    char *clamd;          /* "ip:port" or "unix:/path", NULL when not configured */
    long long timeout_ms; /* budget for all scanners of one message together */
    long long max_size;   /* larger messages are not sent: PROCESSING_FAILED */
};

/* Removes X-Sluice-{Spam,Virus}-* headers the sender put in m->body (forgeries), then, when an
 * enabled rule of rs with scan = true could apply to one of m's recipients, asks the scanners
 * of sc within one time budget and sets m->verdicts.spam / .virus, m's virus name, and
 * the X-Sluice-Spam-Verdict, X-Sluice-Spam-Score and X-Sluice-Virus-Verdict headers of its
 * stored copies. Without a scan, the verdicts stay UNSET. Never fails: a scanner that cannot
 * answer gives PROCESSING_FAILED. */
void scan_message(const struct scan_cfg *sc, const struct rule_set *rs, struct message *m);

#endif
