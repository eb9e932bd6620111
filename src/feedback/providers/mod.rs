//! Bounces and complaints from sending providers' webhooks. A provider is on once
//! an admin made its credential, gave its key or named its topics; each
//! notification is read (one file per provider) into the same shape as a DSN's
//! recipients and taken like one (`take::take_provider`).

use sha2::Digest;

use crate::db::Db;
use crate::feedback::report::Notice;

pub mod mailgun;
pub mod postmark;
pub mod sendgrid;
pub mod ses;

/// The providers Herald reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postmark,
    SendGrid,
    Mailgun,
    Ses,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Ses,
        Provider::Postmark,
        Provider::SendGrid,
        Provider::Mailgun,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Provider::Postmark => "postmark",
            Provider::SendGrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Ses => "ses",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Provider::Postmark => "Postmark",
            Provider::SendGrid => "SendGrid",
            Provider::Mailgun => "Mailgun",
            Provider::Ses => "Amazon SES",
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
            Provider::Ses => Some(
                "SNS topics: the ARN of each topic its bounce and complaint notifications go to",
            ),
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
    /// The provider's id for the email, as its SMTP answer gave it.
    pub provider_id: Option<String>,
    pub status: String,
    pub diagnostic: String,
}

/// A provider's credential, as kept.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credential {
    pub provider: String,
    /// Amazon SES's SNS topics, one per line.
    pub topics: String,
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

/// The purpose Mailgun's signing key is sealed for (see [`crate::sealed`]).
pub const MAILGUN_SEALED_FOR: &[u8] = b"mailgun webhook signing key";

/// What an admin gave to turn a provider on.
#[derive(Debug, Clone, Copy)]
pub enum Given<'a> {
    /// SendGrid's public key (base64 of its DER).
    PublicKey(&'a str),
    /// Mailgun's signing key, sealed.
    SealedSecret(&'a str),
    /// Amazon SNS topic ARNs.
    Topics(&'a [String]),
}

/// Keeps what an admin gave for `provider`, replacing whatever it had.
pub async fn keep(
    conn: &mut sqlx::AnyConnection,
    provider: Provider,
    given: Given<'_>,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let (mut public_key, mut sealed, mut topics) = ("", "", String::new());
    match given {
        Given::PublicKey(key) => public_key = key,
        Given::SealedSecret(secret) => sealed = secret,
        Given::Topics(arns) => topics = arns.join("\n"),
    }
    sqlx::query(
        "INSERT INTO provider_credentials (provider, public_key, sealed_secret, topics, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider) DO UPDATE SET \
         public_key = excluded.public_key, sealed_secret = excluded.sealed_secret, \
         topics = excluded.topics, secret_hash = '', created_at = excluded.created_at, \
         last_at = NULL, last_ok = NULL",
    )
    .bind(provider.code())
    .bind(public_key)
    .bind(sealed)
    .bind(topics)
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

/// The SNS topics Amazon SES's notifications may come from, `None` when it is off.
pub async fn topics(db: &Db) -> Result<Option<Vec<String>>, sqlx::Error> {
    let kept: Option<String> =
        sqlx::query_scalar("SELECT topics FROM provider_credentials WHERE provider = $1")
            .bind(Provider::Ses.code())
            .fetch_optional(db.read())
            .await?;
    Ok(kept.map(|t| t.lines().map(str::to_string).collect()))
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
        "SELECT provider, topics, created_at, last_at, last_ok FROM provider_credentials ORDER BY provider",
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

/// Forgets the notifications received before `before` (their reports go too):
/// a replay that old is taken again.
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    crate::db::delete_in_batches(
        db,
        "DELETE FROM provider_notices WHERE (provider, notice_id) IN \
         (SELECT provider, notice_id FROM provider_notices WHERE received_at < $1 LIMIT $2)",
        before,
    )
    .await
}

/// Whether `provider` sent the notification `id` before.
pub async fn seen(db: &Db, provider: Provider, id: &str) -> Result<bool, sqlx::Error> {
    let found: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM provider_notices WHERE provider = $1 AND notice_id = $2",
    )
    .bind(provider.code())
    .bind(id.chars().take(200).collect::<String>())
    .fetch_one(db.read())
    .await?;
    Ok(found > 0)
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
