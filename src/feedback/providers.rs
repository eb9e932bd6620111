//! Bounces and complaints from sending providers' webhooks. A provider is on once
//! an admin made its credential (only a hash of it is kept); each notification is
//! read into the same shape as a DSN's recipients and taken like one
//! (`take::take_provider`). Postmark's bounce and spam-complaint webhooks are read
//! here (basic auth).

use serde::Deserialize;
use sha2::Digest;

use crate::db::Db;
use crate::feedback::report::Notice;

/// The providers Herald reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postmark,
}

impl Provider {
    pub const ALL: [Provider; 1] = [Provider::Postmark];

    pub fn code(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Provider::Postmark => "Postmark",
        }
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
    let ok = bool::from(hash(secret).as_bytes().ct_eq(kept.as_bytes()));
    sqlx::query("UPDATE provider_credentials SET last_at = $1, last_ok = $2 WHERE provider = $3")
        .bind(now_ms)
        .bind(i64::from(ok))
        .bind(provider.code())
        .execute(db.write())
        .await?;
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
