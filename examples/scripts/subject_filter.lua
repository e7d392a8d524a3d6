-- Refuses mail whose (decoded) subject contains a blocked phrase: the SMTP client gets the
-- bounce as the reply to DATA, and nothing is stored.

local blocked = { "lottery winner", "crypto giveaway", "urgent wire transfer" }

function handler(event, msg)
  local subject = (msg:subject() or ""):lower()
  for _, phrase in ipairs(blocked) do
    if subject:find(phrase, 1, true) then
      sluice.log("info", "subject filter matched:", phrase)
      sluice.metric("subject_filter_rejected")
      return {
        disposition = "STOP_RULE_SET",
        bounce = { smtp_reply_code = "554", status_code = "5.7.1",
                   message = "Message content rejected" },
      }
    end
  end
  return "CONTINUE"
end
