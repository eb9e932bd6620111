//! SendGrid's signed Event Webhook: ECDSA P-256 over the timestamp and the body,
//! under the verification key an admin pasted.

use serde::Deserialize;

use super::ProviderNotice;
use crate::feedback::report::Notice;

/// Checks a SendGrid verification key as the admin pasted it: base64 of a P-256
/// public key (SubjectPublicKeyInfo); returns it without spaces.
pub fn parse_key(raw: &str) -> Result<String, String> {
    let key: String = raw
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.split_whitespace())
        .collect();
    p256_point(&key)
        .map(|_| key)
        .ok_or_else(|| "This is not a SendGrid verification key: paste the key from Settings → Mail Settings → Signed Event Webhook (base64, it starts with MFkw).".into())
}

/// The ASN.1 header of a P-256 public key (SubjectPublicKeyInfo) before its point.
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The uncompressed point of a base64 P-256 SubjectPublicKeyInfo.
fn p256_point(b64: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let point = der.strip_prefix(&P256_SPKI_HEADER[..])?;
    (point.len() == 65 && point[0] == 0x04).then(|| point.to_vec())
}

/// The SPKI of an uncompressed P-256 point, base64 (for tests that make keys).
pub fn p256_spki_base64(point: &[u8]) -> String {
    use base64::Engine;
    let mut der = P256_SPKI_HEADER.to_vec();
    der.extend_from_slice(point);
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Whether `signature` (base64 DER) is SendGrid's ECDSA P-256 SHA-256 signature of
/// `timestamp` followed by `body` under the kept public key `key`.
pub fn signed(key: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    use base64::Engine;
    let (Some(point), Ok(signature)) = (
        p256_point(key),
        base64::engine::general_purpose::STANDARD.decode(signature.trim()),
    ) else {
        return false;
    };
    let mut signed = timestamp.as_bytes().to_vec();
    signed.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &signature)
        .is_ok()
}

/// One event of SendGrid's Event Webhook.
#[derive(Debug, Deserialize)]
struct SendGridEvent {
    #[serde(default)]
    email: String,
    #[serde(default)]
    event: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    sg_event_id: String,
    #[serde(rename = "smtp-id", default)]
    smtp_id: String,
    /// "Lj5nXYZa….filterdrecv-…": its start is the id SendGrid's SMTP answer gave.
    #[serde(default)]
    sg_message_id: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    status: String,
}

/// Reads SendGrid's Event Webhook body (an array of events): its bounces, blocks,
/// deferrals and spam reports; other events (delivered, open…) are left out.
pub fn read(body: &[u8]) -> Result<Vec<ProviderNotice>, String> {
    let events: Vec<SendGridEvent> = serde_json::from_slice(body)
        .map_err(|e| format!("not a SendGrid Event Webhook body: {e}"))?;
    let mut out = Vec::new();
    for e in events {
        let notice = match (e.event.as_str(), e.kind.as_str()) {
            ("bounce", "blocked") => Notice::SoftBounce,
            ("bounce", _) => Notice::HardBounce,
            ("deferred", _) => Notice::Delayed,
            ("spamreport", _) => Notice::Complaint,
            _ => continue,
        };
        let address = e.email.trim().to_lowercase();
        if address.is_empty() || e.sg_event_id.is_empty() {
            return Err("an event names no address (email) or id (sg_event_id)".into());
        }
        let status: String = e
            .status
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '.')
            .take(16)
            .collect();
        out.push(ProviderNotice {
            id: e.sg_event_id.chars().take(200).collect(),
            notice,
            address,
            message_id: (!e.smtp_id.is_empty()).then(|| e.smtp_id.trim().to_string()),
            provider_id: e
                .sg_message_id
                .split(".filter")
                .next()
                .filter(|id| !id.is_empty())
                .map(str::to_string),
            status,
            diagnostic: format!("SendGrid {}: {}", e.event, e.reason)
                .chars()
                .take(300)
                .collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendgrid_signatures_and_events_read() {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let key = p256_spki_base64(pair.public_key().as_ref());
        assert_eq!(parse_key(&format!(" {key}\n")).unwrap(), key);
        assert!(parse_key("MFkwEwYHKoZIzj0CAQ").is_err());
        let body = br#"[{"email":"a@b.example","event":"bounce","type":"bounce","sg_event_id":"e1","smtp-id":"<x@y>","reason":"550 5.1.1 unknown","status":"5.1.1"},{"email":"a@b.example","event":"open","sg_event_id":"e2"}]"#;
        let sig = pair
            .sign(&rng, &[b"1700000000".as_slice(), body].concat())
            .unwrap();
        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD.encode(sig.as_ref());
        assert!(signed(&key, "1700000000", body, &sig));
        assert!(!signed(&key, "1700000001", body, &sig), "another time");
        assert!(!signed(&key, "1700000000", b"[]", &sig), "another body");
        assert!(!signed(&key, "1700000000", body, "bm90IGEgc2lnbmF0dXJl"));
        let notices = read(body).unwrap();
        assert_eq!(notices.len(), 1, "the open is left out");
        assert_eq!(notices[0].notice, Notice::HardBounce);
        assert_eq!(notices[0].message_id.as_deref(), Some("<x@y>"));
        assert!(read(b"{}").is_err());
    }
}
