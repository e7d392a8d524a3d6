-- Multi-tenant tagging: the recipient's domain names the tenant, which is written into an
-- X-Tenant header on every copy stored after this action (and counted per tenant).
-- A rule covering several tenants tags by its first matched recipient.

local tenants = {
  ["acme.example"] = "acme",
  ["globex.example"] = "globex",
}

function handler(event, msg)
  local rcpt = event.Records[1].ses.receipt.recipients[1]
  local domain = rcpt:match("@([^@]+)$"):lower()
  local tenant = tenants[domain] or "default"
  sluice.metric("tenant_" .. tenant)
  return { add_headers = { ["X-Tenant"] = tenant } }
end
