-- The README's complete example: refuse invoices from senders that fail SPF, tag the rest.
function handler(event, msg)
  local receipt = event.Records[1].ses.receipt
  if receipt.spfVerdict.status == "FAIL" and (msg:subject() or ""):find("[Ii]nvoice") then
    return { disposition = "STOP_RULE_SET",
             bounce = { smtp_reply_code = "550", status_code = "5.7.1",
                        message = "Invoices must come from an authenticated sender" } }
  end
  msg:add_header("X-Checked-By", "sluice")
  return "CONTINUE"
end
