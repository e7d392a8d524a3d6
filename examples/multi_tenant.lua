-- Used-by case: one sluice for several tenants. Each tenant has its own listener (or share one
-- and separate by recipient domain, as here with rule recipients), its own header, Maildir
-- tree and webhook. Per-rule metrics are labelled with the rule names below.
server {
  listen   = {
    { address = "0.0.0.0:25", rule_set = "tenants" },
  },
  hostname = "mx.example.net",
  domains  = { "alpha.example", "beta.example" },
  data_dir = "/var/lib/sluice",
  metrics  = "127.0.0.1:9125",
}

rule_set "tenants" {
  rule {
    name       = "alpha",
    recipients = { "alpha.example" },
    actions    = {
      add_header { name = "X-Tenant", value = "alpha" },
      store { maildir = "/srv/mail/alpha/{user}" },
      webhook { url = "https://hooks.alpha.example/inbound", secret = os.getenv("ALPHA_HOOK_SECRET") or "change-me",
                content = "headers" },
      stop {},
    },
  },
  rule {
    name       = "beta",
    recipients = { "beta.example" },
    actions    = {
      add_header { name = "X-Tenant", value = "beta" },
      store { maildir = "/srv/mail/beta/{user}" },
      webhook { url = "https://hooks.beta.example/mail", content = "none" },
      stop {},
    },
  },
}
