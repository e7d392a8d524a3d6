server {
  listen = { "127.0.0.1:2525", { address = "[::1]:2526", rule_set = "other",
             proxy_protocol = true, trusted = { "127.0.0.1/32", "::1" } } },
  hostname = "mx.example.test",
  domains = { "example.test", ".example.test" },
  data_dir = "var",
  max_message_size = 1048576,
  log_format = "json",
  xclient = { "127.0.0.1/32" },
  command_timeout = 30, data_timeout = 60, max_errors = 5, workers = 2,
}
rule_set "main" {
  rule {
    name = "store-all",
    recipients = { "example.test", ".example.test", "user+x@example.test" },
    tls = "require",
    actions = {
      add_header { name = "X-Rule", value = "main" },
      store { maildir = "var/mail/{domain}/{user}" },
      stop {},
    },
  },
  rule { name = "off", enabled = false, actions = { stop {} } },
}
rule_set "other" { rule { name = "r", actions = { store { maildir = "var/o/{user}" } } } }
