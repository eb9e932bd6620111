//! Bounces and complaints from sending providers' webhooks. A provider is on once
//! an admin made its credential (only a hash of it is kept); each notification is
//! read into the same shape as a DSN's recipients and taken like one
//! (`take::take_provider`). Read here: Postmark's bounce and spam-complaint
//! webhooks (basic auth, Herald's own credentials) and SendGrid's signed Event
//! Webhook (ECDSA P-256 over the timestamp and the body, SendGrid's public key).

use serde::Deserialize;
use sha2::Digest;

use crate::db::Db;
use crate::feedback::report::Notice;

/// The providers Herald reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postmark,
    SendGrid,
    Mailgun,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Postmark, Provider::SendGrid, Provider::Mailgun];

    pub fn code(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
            Provider::SendGrid => "sendgrid",
            Provider::Mailgun => "mailgun",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Provider::Postmark => "Postmark",
            Provider::SendGrid => "SendGrid",
            Provider::Mailgun => "Mailgun",
        }
    }

    /// Who sent a report, as the kept reports name it: "Postmark webhook".
    pub fn webhook_name(self) -> String {
        format!("{} webhook", self.label())
    }

    /// What the admin gives to turn it on (none: Herald makes the credentials).
    pub fn asks_for(self) -> Option<&'static str> {
        match self {
            Provider::Postmark => None,
            Provider::SendGrid => Some("verification key (Mail Settings → Signed Event Webhook)"),
            Provider::Mailgun => Some("HTTP webhook signing key (Sending → Webhooks)"),
        }
    }

    /// Whether Herald makes its credentials (else the admin gives a key).
    pub fn herald_makes_credentials(self) -> bool {
        self.asks_for().is_none()
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// One bounce or complaint as a provider reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderNotice {
    /// The provider's id of the notification (a replay has the same).
    pub id: String,
    pub notice: Notice,
    pub address: String,
    /// The original Message-ID, when the provider says it.
    pub message_id: Option<String>,
    pub status: String,
    pub diagnostic: String,
}

/// A provider's credential, as kept.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credential {
    pub provider: String,
    pub created_at: i64,
    pub last_at: Option<i64>,
    pub last_ok: Option<i64>,
}

impl Credential {
    /// "the signature checked" / "refused: wrong credentials", for the last one.
    pub fn last_words(&self) -> &'static str {
        match self.last_ok {
            Some(1) => "its credentials checked",
            Some(_) => "refused: the credentials did not check",
            None => "",
        }
    }
}

fn hash(secret: &str) -> String {
    crate::types::hex(&sha2::Sha256::digest(secret.as_bytes()))
}

/// Makes a new credential for `provider` (replacing any other); returns the
/// secret, shown once.
pub async fn make_credential(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
    now_ms: i64,
) -> Result<String, sqlx::Error> {
    let secret = crate::types::random_hex(24);
    sqlx::query(
        "INSERT INTO provider_credentials (provider, secret_hash, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (provider) DO UPDATE SET secret_hash = excluded.secret_hash, \
         created_at = excluded.created_at, last_at = NULL, last_ok = NULL",
    )
    .bind(provider.code())
    .bind(hash(&secret))
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(secret)
}

/// Keeps `provider`'s public key (base64 of its DER), replacing any other.
pub async fn keep_public_key(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
    key: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider_credentials (provider, public_key, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (provider) DO UPDATE SET public_key = excluded.public_key, secret_hash = '', \
         created_at = excluded.created_at, last_at = NULL, last_ok = NULL",
    )
    .bind(provider.code())
    .bind(key)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The purpose Mailgun's signing key is sealed for (see [`crate::sealed`]).
pub const MAILGUN_SEALED_FOR: &[u8] = b"mailgun webhook signing key";

/// Keeps `provider`'s signing key sealed, replacing any other.
pub async fn keep_sealed_secret(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
    sealed: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider_credentials (provider, sealed_secret, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (provider) DO UPDATE SET sealed_secret = excluded.sealed_secret, secret_hash = '', \
         public_key = '', created_at = excluded.created_at, last_at = NULL, last_ok = NULL",
    )
    .bind(provider.code())
    .bind(sealed)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// The kept sealed secret of `provider`, `None` when it is off.
pub async fn sealed_secret(db: &Db, provider: Provider) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sealed_secret FROM provider_credentials WHERE provider = $1")
        .bind(provider.code())
        .fetch_optional(db.read())
        .await
}

/// Checks a Mailgun signing key as pasted: one word of letters, digits and `-`.
pub fn parse_mailgun_key(raw: &str) -> Result<String, String> {
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
pub fn mailgun(body: &[u8], key: &str) -> Result<Option<Vec<ProviderNotice>>, String> {
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

/// Checks a SendGrid verification key as the admin pasted it: base64 of a P-256
/// public key (SubjectPublicKeyInfo); returns it without spaces.
pub fn parse_sendgrid_key(raw: &str) -> Result<String, String> {
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
pub fn sendgrid_signed(key: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
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

/// The kept public key of `provider`, `None` when it is off.
pub async fn public_key(db: &Db, provider: Provider) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT public_key FROM provider_credentials WHERE provider = $1")
        .bind(provider.code())
        .fetch_optional(db.read())
        .await
}

/// Records a call of `provider`: when, and whether it proved itself.
pub async fn called(db: &Db, provider: Provider, ok: bool, now_ms: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE provider_credentials SET last_at = $1, last_ok = $2 WHERE provider = $3")
        .bind(now_ms)
        .bind(i64::from(ok))
        .bind(provider.code())
        .execute(db.write())
        .await?;
    Ok(())
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
    #[serde(default)]
    reason: String,
    #[serde(default)]
    status: String,
}

/// Reads SendGrid's Event Webhook body (an array of events): its bounces, blocks,
/// deferrals and spam reports; other events (delivered, open…) are left out.
pub fn sendgrid(body: &[u8]) -> Result<Vec<ProviderNotice>, String> {
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
            status,
            diagnostic: format!("SendGrid {}: {}", e.event, e.reason)
                .chars()
                .take(300)
                .collect(),
        });
    }
    Ok(out)
}

/// Turns `provider` off; returns whether it was on.
pub async fn remove_credential(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM provider_credentials WHERE provider = $1")
            .bind(provider.code())
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

/// The providers that are on.
pub async fn credentials(db: &Db) -> Result<Vec<Credential>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, created_at, last_at, last_ok FROM provider_credentials ORDER BY provider",
    )
    .fetch_all(db.read())
    .await
}

/// Whether `secret` is `provider`'s credential (in constant time); records the
/// try as the provider's last. `None` when the provider is off.
pub async fn check(
    db: &Db,
    provider: Provider,
    secret: &str,
    now_ms: i64,
) -> Result<Option<bool>, sqlx::Error> {
    let kept: Option<String> =
        sqlx::query_scalar("SELECT secret_hash FROM provider_credentials WHERE provider = $1")
            .bind(provider.code())
            .fetch_optional(db.read())
            .await?;
    let Some(kept) = kept else {
        return Ok(None);
    };
    use subtle::ConstantTimeEq;
    let ok = !kept.is_empty() && bool::from(hash(secret).as_bytes().ct_eq(kept.as_bytes()));
    called(db, provider, ok, now_ms).await?;
    Ok(Some(ok))
}

/// Records that `provider` sent the notification `id`; false when it had already.
pub async fn first_time(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
    id: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "INSERT INTO provider_notices (provider, notice_id, received_at) VALUES ($1, $2, $3) \
         ON CONFLICT (provider, notice_id) DO NOTHING",
    )
    .bind(provider.code())
    .bind(id.chars().take(200).collect::<String>())
    .bind(now_ms)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

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
}

/// Reads a Postmark webhook body: `Ok(None)` for a record that is not a bounce
/// or complaint Herald acts on (an auto-responder, an open), `Err` for a body that
/// is not one.
pub fn postmark(body: &[u8]) -> Result<Option<ProviderNotice>, String> {
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
        status: status.into(),
        diagnostic: format!("Postmark {said}").chars().take(300).collect(),
    }))
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
        assert_eq!(parse_sendgrid_key(&format!(" {key}\n")).unwrap(), key);
        assert!(parse_sendgrid_key("MFkwEwYHKoZIzj0CAQ").is_err());
        let body = br#"[{"email":"a@b.example","event":"bounce","type":"bounce","sg_event_id":"e1","smtp-id":"<x@y>","reason":"550 5.1.1 unknown","status":"5.1.1"},{"email":"a@b.example","event":"open","sg_event_id":"e2"}]"#;
        let sig = pair
            .sign(&rng, &[b"1700000000".as_slice(), body].concat())
            .unwrap();
        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD.encode(sig.as_ref());
        assert!(sendgrid_signed(&key, "1700000000", body, &sig));
        assert!(
            !sendgrid_signed(&key, "1700000001", body, &sig),
            "another time"
        );
        assert!(
            !sendgrid_signed(&key, "1700000000", b"[]", &sig),
            "another body"
        );
        assert!(!sendgrid_signed(
            &key,
            "1700000000",
            body,
            "bm90IGEgc2lnbmF0dXJl"
        ));
        let notices = sendgrid(body).unwrap();
        assert_eq!(notices.len(), 1, "the open is left out");
        assert_eq!(notices[0].notice, Notice::HardBounce);
        assert_eq!(notices[0].message_id.as_deref(), Some("<x@y>"));
        assert!(sendgrid(b"{}").is_err());
    }

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
        let notices = mailgun(body(&good).as_bytes(), key).unwrap().unwrap();
        assert_eq!(notices[0].notice, Notice::HardBounce);
        assert_eq!(notices[0].address, "alice@example.com");
        assert_eq!(
            notices[0].message_id.as_deref(),
            Some("<20130503182626.18666.16540@sandbox.mailgun.org>")
        );
        assert_eq!(
            mailgun(body(&sign("1", "2")).as_bytes(), key).unwrap(),
            None
        );
        assert_eq!(mailgun(body("zz").as_bytes(), key).unwrap(), None);
        assert_eq!(
            mailgun(body(&good).as_bytes(), "key-another").unwrap(),
            None
        );
        assert!(mailgun(b"[]", key).is_err());
        assert!(parse_mailgun_key("key-0123456789abcdef").is_ok());
        assert!(parse_mailgun_key("not a key").is_err());
    }

    #[test]
    fn postmark_records_read_into_notices() {
        let hard = br#"{"RecordType":"Bounce","ID":4323372036854775807,"Type":"HardBounce","TypeCode":1,"Name":"Hard bounce","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Description":"The server was unable to deliver your message (ex: unknown user, mailbox not found).","Details":"Test bounce details","Email":"John@Example.com","BouncedAt":"2019-11-05T16:33:54.9070259Z"}"#;
        let n = postmark(hard).unwrap().unwrap();
        assert_eq!(n.notice, Notice::HardBounce);
        assert_eq!(n.address, "john@example.com");
        assert_eq!(n.id, "Bounce:4323372036854775807:1");
        assert!(
            n.diagnostic.starts_with("Postmark HardBounce: The server"),
            "{}",
            n.diagnostic
        );
        let spam = br#"{"RecordType":"SpamComplaint","ID":42,"Type":"SpamComplaint","TypeCode":512,"Email":"a@b.example"}"#;
        assert_eq!(postmark(spam).unwrap().unwrap().notice, Notice::Complaint);
        let auto = br#"{"RecordType":"Bounce","ID":7,"Type":"AutoResponder","TypeCode":4,"Email":"a@b.example"}"#;
        assert_eq!(postmark(auto).unwrap(), None);
        assert!(postmark(b"{").is_err());
        assert!(postmark(br#"{"RecordType":"Bounce","ID":1,"Type":"HardBounce"}"#).is_err());
    }
}
