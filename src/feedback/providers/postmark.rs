//! Postmark's bounce and spam-complaint webhooks, behind basic auth with the
//! credentials Herald made for it.

use serde::Deserialize;

use super::ProviderNotice;
use crate::feedback::report::Notice;

/// A Postmark bounce or spam-complaint webhook.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Postmark {
    record_type: String,
    #[serde(rename = "ID")]
    id: serde_json::Value,
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    details: String,
    #[serde(default)]
    type_code: i64,
    /// Postmark's id for the email it sent.
    #[serde(rename = "MessageID", default)]
    message_id: String,
}

/// Reads a Postmark webhook body: `Ok(None)` for a record that is not a bounce
/// or complaint Herald acts on (an auto-responder, an open), `Err` for a body that
/// is not one.
pub fn read(body: &[u8]) -> Result<Option<ProviderNotice>, String> {
    let p: Postmark =
        serde_json::from_slice(body).map_err(|e| format!("not a Postmark webhook: {e}"))?;
    let notice = match (p.record_type.as_str(), p.kind.as_str()) {
        ("SpamComplaint", _) | ("Bounce", "SpamComplaint") => Notice::Complaint,
        ("Bounce", "HardBounce" | "BadEmailAddress" | "ManuallyDeactivated") => Notice::HardBounce,
        ("Bounce", "SoftBounce" | "DnsError" | "Blocked" | "SMTPApiError") => Notice::SoftBounce,
        ("Bounce", "Transient") => Notice::Delayed,
        _ => return Ok(None),
    };
    let address = p.email.trim().to_lowercase();
    if address.is_empty() {
        return Err("the webhook names no address (Email)".into());
    }
    let id = match &p.id {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let status = match notice {
        Notice::HardBounce => "5.0.0",
        Notice::SoftBounce | Notice::Delayed => "4.0.0",
        Notice::Complaint => "",
    };
    let said = [p.kind.as_str(), p.description.as_str(), p.details.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    Ok(Some(ProviderNotice {
        id: format!("{}:{id}:{}", p.record_type, p.type_code),
        notice,
        address,
        message_id: None,
        provider_id: (!p.message_id.is_empty()).then(|| p.message_id.trim().to_string()),
        status: status.into(),
        diagnostic: format!("Postmark {said}").chars().take(300).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postmark_records_read_into_notices() {
        let hard = br#"{"RecordType":"Bounce","ID":4323372036854775807,"Type":"HardBounce","TypeCode":1,"Name":"Hard bounce","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Description":"The server was unable to deliver your message (ex: unknown user, mailbox not found).","Details":"Test bounce details","Email":"John@Example.com","BouncedAt":"2019-11-05T16:33:54.9070259Z"}"#;
        let n = read(hard).unwrap().unwrap();
        assert_eq!(n.notice, Notice::HardBounce);
        assert_eq!(n.address, "john@example.com");
        assert_eq!(n.id, "Bounce:4323372036854775807:1");
        assert!(
            n.diagnostic.starts_with("Postmark HardBounce: The server"),
            "{}",
            n.diagnostic
        );
        let spam = br#"{"RecordType":"SpamComplaint","ID":42,"Type":"SpamComplaint","TypeCode":512,"Email":"a@b.example"}"#;
        assert_eq!(read(spam).unwrap().unwrap().notice, Notice::Complaint);
        let auto = br#"{"RecordType":"Bounce","ID":7,"Type":"AutoResponder","TypeCode":4,"Email":"a@b.example"}"#;
        assert_eq!(read(auto).unwrap(), None);
        assert!(read(b"{").is_err());
        assert!(read(br#"{"RecordType":"Bounce","ID":1,"Type":"HardBounce"}"#).is_err());
    }
}
