-- The quick-start config: an MX for example.test that stores every message in a Maildir.
-- `make run` starts sluice with it; `swaks --server 127.0.0.1:2525 --to user@example.test`
-- then delivers to var/mail/example.test/user/new/.
server {
  listen   = { "127.0.0.1:2525" },
  hostname = "mx.example.test",
  domains  = { "example.test" },          -- accepted domains; any other recipient: 550 5.7.1 relaying denied
  data_dir = "var",                       -- spool and state
  max_message_size = 40 * 1024 * 1024,
  tls = { cert = "var/tls/cert.pem", key = "var/tls/key.pem" },   -- optional; STARTTLS offered when set
}

rule_set "main" {
  rule {
    name       = "store-all",
    recipients = { "example.test", ".example.test" },
    actions    = {
      add_header { name = "X-Sluice-Rule", value = "store-all" },
      store { maildir = "var/mail/{domain}/{user}" },
    },
  },
}
