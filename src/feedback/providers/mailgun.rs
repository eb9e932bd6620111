//! Mailgun's webhooks: HMAC-SHA256 of the timestamp and token under the
//! webhook signing key an admin gave (kept sealed).

use serde::Deserialize;

use super::ProviderNotice;
use crate::feedback::report::Notice;

/// Checks a Mailgun signing key as pasted: one word of letters, digits and `-`.
pub fn parse_key(raw: &str) -> Result<String, String> {
    let key = raw.trim();
    if key.len() >= 16
        && key.len() <= 200
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        Ok(key.to_string())
    } else {
        Err("This is not a Mailgun webhook signing key: copy it from Sending → Webhooks (HTTP webhook signing key).".into())
    }
}

/// A Mailgun webhook: its signature and its event.
#[derive(Debug, Deserialize)]
struct Mailgun {
    signature: MailgunSignature,
    #[serde(rename = "event-data")]
    event: MailgunEvent,
}

#[derive(Debug, Deserialize)]
struct MailgunSignature {
    timestamp: String,
    token: String,
    signature: String,
}

#[derive(Debug, Deserialize)]
struct MailgunEvent {
    #[serde(default)]
    event: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    recipient: String,
    #[serde(default)]
    message: serde_json::Value,
    #[serde(rename = "delivery-status", default)]
    delivery_status: serde_json::Value,
}

/// Reads a Mailgun webhook and checks its signature (HMAC-SHA256 of the timestamp
/// and token under the signing `key`, in constant time): `Err` for a body that is
/// not one, `Ok(None)` for a bad signature, `Ok(Some(notices))` otherwise (empty
/// for events Herald does not act on).
pub fn read(body: &[u8], key: &str) -> Result<Option<Vec<ProviderNotice>>, String> {
    use hmac::{Hmac, Mac};
    let m: Mailgun =
        serde_json::from_slice(body).map_err(|e| format!("not a Mailgun webhook: {e}"))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(m.signature.timestamp.as_bytes());
    mac.update(m.signature.token.as_bytes());
    let given = (0..m.signature.signature.len())
        .step_by(2)
        .map(|i| {
            m.signature
                .signature
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>();
    let Some(given) = given else {
        return Ok(None);
    };
    if mac.verify_slice(&given).is_err() {
        return Ok(None);
    }
    let e = m.event;
    let code = e.delivery_status["code"].as_i64().unwrap_or(0);
    let notice = match (e.event.as_str(), e.severity.as_str()) {
        ("complained", _) => Notice::Complaint,
        ("failed", "permanent") if (400..500).contains(&code) => Notice::SoftBounce,
        ("failed", "permanent") => Notice::HardBounce,
        ("failed", _) => Notice::Delayed,
        _ => return Ok(Some(Vec::new())),
    };
    let address = e.recipient.trim().to_lowercase();
    if address.is_empty() {
        return Err("the event names no recipient".into());
    }
    let message_id = e.message["headers"]["message-id"].as_str().map(|id| {
        format!(
            "<{}>",
            id.trim().trim_start_matches('<').trim_end_matches('>')
        )
    });
    let said = [
        e.delivery_status["message"].as_str().unwrap_or(""),
        e.delivery_status["description"].as_str().unwrap_or(""),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let id = if e.id.is_empty() {
        m.signature.token
    } else {
        e.id
    };
    Ok(Some(vec![ProviderNotice {
        id: id.chars().take(200).collect(),
        notice,
        address,
        message_id,
        provider_id: None,
        status: if code > 0 {
            code.to_string()
        } else {
            String::new()
        },
        diagnostic: format!("Mailgun {}: {said}", e.event)
            .chars()
            .take(300)
            .collect(),
    }]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailgun_signatures_and_events_read() {
        use hmac::{Hmac, Mac};
        let key = "key-0123456789abcdef0123456789abcdef";
        let sign = |timestamp: &str, token: &str| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
            mac.update(timestamp.as_bytes());
            mac.update(token.as_bytes());
            crate::types::hex(&mac.finalize().into_bytes())
        };
        let body = |signature: &str| {
            serde_json::json!({
                "signature": {"timestamp": "1529006854", "token": "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0", "signature": signature},
                "event-data": {"event": "failed", "severity": "permanent", "id": "G9Bn5sl1TC6nu79C8C0bwg",
                    "recipient": "Alice@Example.com", "message": {"headers": {"message-id": "20130503182626.18666.16540@sandbox.mailgun.org"}},
                    "delivery-status": {"code": 550, "message": "No such user", "description": ""}}
            })
            .to_string()
        };
        let good = sign(
            "1529006854",
            "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
        );
        let notices = read(body(&good).as_bytes(), key).unwrap().unwrap();
        assert_eq!(notices[0].notice, Notice::HardBounce);
        assert_eq!(notices[0].address, "alice@example.com");
        assert_eq!(
            notices[0].message_id.as_deref(),
            Some("<20130503182626.18666.16540@sandbox.mailgun.org>")
        );
        assert_eq!(read(body(&sign("1", "2")).as_bytes(), key).unwrap(), None);
        assert_eq!(read(body("zz").as_bytes(), key).unwrap(), None);
        assert_eq!(read(body(&good).as_bytes(), "key-another").unwrap(), None);
        assert!(read(b"[]", key).is_err());
        assert!(parse_key("key-0123456789abcdef").is_ok());
        assert!(parse_key("not a key").is_err());
    }
}
