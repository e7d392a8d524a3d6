-- Spam and virus filtering with the scanners mail operators already run (see docs/scanning.md).
-- Debian: `apt-get install rspamd clamav-daemon`; rspamd's normal worker listens on
-- 127.0.0.1:11333 and clamd on /run/clamav/clamd.ctl out of the box.
--
--   virus FAIL  -> refused in the SMTP session: 554 5.7.1 with the signature name
--   spam FAIL   -> stored in the recipient's Junk folder (Maildir++ ".Junk")
--   spam GRAY   -> tagged with X-Spam: yes, delivered to the inbox
--   otherwise   -> the inbox; every scanned copy carries X-Sluice-Spam-Verdict,
--                  X-Sluice-Spam-Score and X-Sluice-Virus-Verdict
server {
  listen   = { "127.0.0.1:2525" },
  hostname = "mx.example.test",
  domains  = { "example.test" },
  data_dir = "var",
}

scan {
  rspamd     = "http://127.0.0.1:11333",
  clamd      = "unix:/run/clamav/clamd.ctl",   -- or "127.0.0.1:3310"
  timeout_ms = 10000,                          -- for both scanners together
  max_size   = 20 * 1024 * 1024,               -- larger mail is not scanned: PROCESSING_FAILED
}

rule_set "main" {
  rule {
    name    = "reject-viruses",
    scan    = true,                            -- any rule with scan = true makes sluice scan
    when    = { virus = "FAIL" },
    actions = {
      bounce { smtp_reply_code = "554", status_code = "5.7.1",
               message = "Message contains a virus ({virus})" },
      stop {},
    },
  },
  rule {
    name    = "spam-to-junk",
    scan    = true,
    when    = { spam = "FAIL" },
    actions = {
      store { maildir = "var/mail/{domain}/{user}/.Junk" },
      stop {},
    },
  },
  rule {
    name    = "tag-probable-spam",
    scan    = true,
    when    = { spam = "GRAY" },
    actions = { add_header { name = "X-Spam", value = "yes" } },
  },
  rule {
    name    = "inbox",
    actions = { store { maildir = "var/mail/{domain}/{user}" } },
  },
}
