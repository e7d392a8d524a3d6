-- DMARC aggregate reports, both ways (RFC 7489 §7.2).
--  In:  mail to dmarc@example.test (the rua= of example.test's DMARC record) is unpacked,
--       validated and written as one JSON document per report to var/dmarc/, and kept raw.
--  Out: every DMARC evaluation is recorded under data_dir; `sluice serve` mails the daily
--       aggregate reports to the senders' rua= through bounce_relay (send = true), and
--       `sluice dmarc-report -c examples/dmarc_reports.lua --dry-run out/` shows them.
server {
  listen       = { "127.0.0.1:2525" },
  hostname     = "mx.example.test",
  domains      = { "example.test" },
  data_dir     = "var",
  bounce_relay = "127.0.0.1:2526",   -- the outbound MTA that sends our reports (and DSNs)
}

dmarc_reports {
  org_name = "Example Test Mail",
  email    = "dmarc-reports@example.test",   -- From: of our reports
  interval = "24h",
  send     = true,
}

rule_set "main" {
  rule {
    name       = "dmarc-rua",
    recipients = { "dmarc@example.test" },
    actions    = {
      -- on_failure defaults to "continue": a broken report is logged and counted
      -- (PublishFailure), and the raw mail is still kept below.
      dmarc_report_ingest { store = "var/dmarc", max_decompressed = 20 * 1024 * 1024 },
      store { maildir = "var/mail/{domain}/{user}" },
    },
  },
  rule {
    name       = "everyone-else",
    recipients = { "example.test" },
    actions    = { store { maildir = "var/mail/{domain}/{user}" } },
  },
}
