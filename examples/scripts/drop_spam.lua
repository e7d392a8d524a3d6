-- SES receipt-rule Lambda example 1: stop the rule set (nothing more is done with the message)
-- when SPF, DKIM, the spam scan or the virus scan FAILed.

function handler(event, msg)
  local receipt = event.Records[1].ses.receipt
  if receipt.spfVerdict.status == "FAIL"
      or receipt.dkimVerdict.status == "FAIL"
      or receipt.spamVerdict.status == "FAIL"
      or receipt.virusVerdict.status == "FAIL" then
    sluice.log("info", "dropping message", event.Records[1].ses.mail.messageId)
    sluice.metric("spam_dropped")
    return "STOP_RULE_SET"
  end
  return "CONTINUE"
end
