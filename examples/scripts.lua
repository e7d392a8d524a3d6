-- Example: receipt rules that call Lua scripts (see docs/lua-scripts.md). Script paths are
-- relative to this file. `sluice check -c examples/scripts.lua` validates and compiles them.
server {
  listen   = { "127.0.0.1:2525" },
  hostname = "mx.example.test",
  domains  = { "example.test", "acme.example", "globex.example" },
  data_dir = "var",
}

rule_set "main" {
  -- DMARC failures with a reject policy are bounced in the session.
  rule { name = "dmarc", actions = { lua { script = "scripts/dmarc_bounce.lua" } } },
  -- Failed SPF/DKIM/spam/virus verdicts end the chain: nothing is stored.
  rule { name = "spam", actions = { lua { script = "scripts/drop_spam.lua" } } },
  rule { name = "subjects", actions = { lua { script = "scripts/subject_filter.lua", timeout_ms = 200 } } },
  -- Tenants' mail is tagged, then stored.
  rule {
    name       = "tenants",
    recipients = { "acme.example", "globex.example" },
    actions    = {
      lua { script = "scripts/tag_tenant.lua" },
      store { maildir = "var/mail/{domain}/{user}" },
    },
  },
  -- Only mail carrying X-Header: X-Value reaches the partner mailbox.
  rule {
    name       = "partner",
    recipients = { "partner@example.test" },
    actions    = {
      lua { script = "scripts/require_header.lua", memory_kb = 1024 },
      store { maildir = "var/mail/{domain}/{user}" },
    },
  },
}
