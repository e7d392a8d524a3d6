-- SES receipt-rule Lambda example 2: stop this rule (skip its remaining actions) unless the
-- message carries the header "X-Header: X-Value".

function handler(event, msg)
  for _, h in ipairs(event.Records[1].ses.mail.headers) do
    if h.name:lower() == "x-header" and h.value == "X-Value" then
      return "CONTINUE"
    end
  end
  return "STOP_RULE"
end
