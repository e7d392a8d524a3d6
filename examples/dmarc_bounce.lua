-- Used-by case: "bounce policy for DMARC FAIL+REJECT mail", as one line of config.
-- Mail that fails DMARC from a domain whose policy is reject is refused in the SMTP session
-- (550 5.7.1, so the sending server returns it: no backscatter); quarantine-policy failures go
-- to the recipient's Junk folder with a header; everything else is stored normally.
server {
  listen   = { "0.0.0.0:25" },
  hostname = "mx.example.test",
  domains  = { "example.test" },
  data_dir = "/var/lib/sluice",
  -- tls = { cert = "/etc/sluice/cert.pem", key = "/etc/sluice/key.pem" },
}

rule_set "main" {
  rule {
    name    = "dmarc-policy",
    actions = {
      bounce_on_dmarc_fail {
        -- defaults: smtp_reply_code = "550", status_code = "5.7.1", and SES's message
        quarantine = {
          add_header { name = "X-Sluice-Quarantine", value = "dmarc" },
          store { maildir = "/var/mail/{domain}/{user}/.Junk" },
          stop {},
        },
      },
    },
  },
  rule {
    name    = "inbox",
    actions = { store { maildir = "/var/mail/{domain}/{user}" } },
  },
}
