-- sluice in front of Dovecot: the MX for example.com, delivering into Dovecot's mailboxes over
-- LMTP (see docs/dovecot.md for the Dovecot side: the LMTP socket, users, quota).
-- `sluice check -c examples/dovecot.lua` prints the rules in order.
server {
  listen   = { "0.0.0.0:25" },
  hostname = "mx.example.com",
  domains  = { "example.com" },
  data_dir = "/var/lib/sluice",
  -- tls = { cert = "/etc/sluice/cert.pem", key = "/etc/sluice/key.pem" },
}

rule_set "main" {
  -- DMARC failures of domains that ask for it are refused in the session.
  rule {
    name    = "dmarc",
    actions = { bounce_on_dmarc_fail {} },
  },
  -- A copy of the postmaster's mail is also kept on sluice's own disk.
  rule {
    name       = "postmaster-archive",
    recipients = { "postmaster@example.com" },
    actions    = { store { maildir = "/var/lib/sluice/archive/{user}" } },
  },
  rule {
    name       = "mailboxes",
    recipients = { "example.com" },
    actions    = {
      add_header { name = "X-Sluice-Rule", value = "mailboxes" },
      -- Dovecot answers per recipient: a full mailbox gets 552 5.2.2, an unknown user 550 5.1.1
      -- (in the SMTP session when it is the only recipient), Dovecot down 451 (the sender
      -- retries) unless another copy was already delivered, then sluice's spool retries.
      lmtp {
        socket  = "/run/dovecot/lmtp",     -- or address = "127.0.0.1:24"
        rcpt    = "{user}@{domain}",       -- user+label@example.com goes to user@example.com
        timeout = 30,
      },
    },
  },
}
