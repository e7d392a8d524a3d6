-- The SES developer guide's DMARC bounce sample, ported: when the sender's domain fails DMARC
-- and its policy is REJECT, bounce the rule's recipients in the SMTP session and stop the rule
-- set; otherwise carry on.
--
-- The sample reads receipt.dmarcPolicy.status (an object); SES notifications carry the policy
-- as a plain string. Both forms are accepted. The reply is 550 5.7.1 as in the sample;
-- RFC 7372's 5.7.26 ("multiple authentication checks failed"), which large receivers give
-- DMARC rejections, is the more precise code if you prefer it.

local function dmarc_policy(receipt)
  local p = receipt.dmarcPolicy
  if type(p) == "table" then
    p = p.status
  end
  if type(p) == "string" then
    return p:upper()
  end
  return nil
end

function handler(event, msg)
  local ses = event.Records[1].ses
  local receipt = ses.receipt
  if receipt.dmarcVerdict.status == "FAIL" and dmarc_policy(receipt) == "REJECT" then
    sluice.log("info", "DMARC reject policy: bouncing mail from", ses.mail.source)
    sluice.metric("dmarc_bounced")
    return {
      disposition = "stop_rule_set",
      bounce = {
        smtp_reply_code = "550",
        status_code = "5.7.1",
        message = "Unauthenticated email is not accepted due to the sending domain's DMARC policy.",
      },
    }
  end
  return "CONTINUE"
end
