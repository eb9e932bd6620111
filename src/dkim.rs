//! DKIM: the signing key `herald dkim generate` makes — kept in the database,
//! sealed (ChaCha20-Poly1305) under a key derived from Herald's secret key, so every
//! instance signs with it and nobody reads it back — the signer the mailer uses,
//! and the DNS records a sender publishes (DKIM, SPF, DMARC).

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;

use crate::db::Db;

/// The headers the signature covers (those a receiver shows or acts on).
const SIGNED: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// The kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSA-2048: what every receiver verifies.
    Rsa,
    /// Ed25519 (RFC 8463): short, not yet verified everywhere.
    Ed25519,
}

impl Algorithm {
    pub fn parse(v: &str) -> Result<Self, String> {
        match v {
            "rsa" => Ok(Self::Rsa),
            "ed25519" => Ok(Self::Ed25519),
            _ => Err("expected rsa or ed25519".into()),
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// A key as stored: the public half in the clear, the private half sealed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Stored {
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    /// Base64, as the DNS record carries it.
    pub public_key: String,
    sealed_private: String,
    pub created_at: i64,
}

impl Stored {
    /// The name of the TXT record: `selector._domainkey.domain`.
    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record's value: `v=DKIM1; k=rsa; p=…`.
    pub fn record_value(&self) -> String {
        format!("v=DKIM1; k={}; p={}", self.algorithm, self.public_key)
    }
}

/// A new private key (the form lettre reads: PKCS#1 PEM for RSA, the base64 seed
/// for Ed25519) and its public key in base64 for DNS.
pub fn generate(algorithm: Algorithm) -> anyhow::Result<(String, String)> {
    match algorithm {
        Algorithm::Rsa => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::pkcs8::EncodePublicKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
            let private = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)?.to_string();
            let public = key.to_public_key().to_public_key_der()?;
            Ok((private, B64.encode(public.as_bytes())))
        }
        Algorithm::Ed25519 => {
            let mut seed = [0u8; 32];
            rand::RngExt::fill(&mut rand::rng(), &mut seed);
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
                .map_err(|_| anyhow::anyhow!("the Ed25519 key could not be made"))?;
            use ring::signature::KeyPair;
            Ok((B64.encode(seed), B64.encode(pair.public_key().as_ref())))
        }
    }
}

/// The purpose DKIM keys are sealed for (see [`crate::sealed`]).
const SEALED_FOR: &[u8] = b"dkim signing key";

fn seal(secret: &[u8], plain: &str) -> String {
    crate::sealed::seal(secret, SEALED_FOR, plain)
}

fn open(secret: &[u8], sealed: &str) -> Option<String> {
    crate::sealed::open(secret, SEALED_FOR, sealed)
}

/// Makes a key for `domain` and `selector`, keeps it (replacing any other), and
/// returns what to publish.
pub async fn create(
    db: &Db,
    secret: &[u8],
    domain: &str,
    selector: &str,
    algorithm: Algorithm,
    now_ms: i64,
) -> anyhow::Result<Stored> {
    let (private, public) = generate(algorithm)?;
    let stored = Stored {
        domain: domain.to_ascii_lowercase(),
        selector: selector.to_ascii_lowercase(),
        algorithm: algorithm.code().into(),
        public_key: public,
        sealed_private: seal(secret, &private),
        created_at: now_ms,
    };
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM dkim_keys")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO dkim_keys (domain, selector, algorithm, public_key, sealed_private, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&stored.domain)
    .bind(&stored.selector)
    .bind(&stored.algorithm)
    .bind(&stored.public_key)
    .bind(&stored.sealed_private)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    db.commit(tx).await?;
    Ok(stored)
}

/// The key kept, if any.
pub async fn load(db: &Db) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query_as(
        "SELECT domain, selector, algorithm, public_key, sealed_private, created_at FROM dkim_keys",
    )
    .fetch_optional(db.read())
    .await
}

/// Whether `value` may be a domain or a selector (letters, digits, `-`, `.`).
pub fn is_dns_label_list(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A kept key and the signing configuration made from it.
type Kept = (Stored, Arc<DkimConfig>);

/// What the mailer signs with: none until a key is kept; [`Signer::refresh`] reads
/// it again (another instance, or the command line, may have made a new one).
#[derive(Clone, Default)]
pub struct Signer {
    current: Arc<RwLock<Option<Kept>>>,
    secret: Arc<Vec<u8>>,
}

impl Signer {
    pub fn new(secret: Vec<u8>) -> Self {
        Self {
            current: Arc::default(),
            secret: Arc::new(secret),
        }
    }

    /// The signing configuration, if a key is kept.
    pub fn config(&self) -> Option<Arc<DkimConfig>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|(_, c)| c.clone())
    }

    /// Reads the kept key again; a key this secret cannot open is logged, not used.
    pub async fn refresh(&self, db: &Db) -> Result<(), sqlx::Error> {
        let stored = load(db).await?;
        let unchanged = {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            current.as_ref().map(|(s, _)| s) == stored.as_ref()
        };
        if unchanged {
            return Ok(());
        }
        let next = stored.and_then(|s| match self.config_of(&s) {
            Some(c) => Some((s, Arc::new(c))),
            None => {
                tracing::error!(
                    domain = %s.domain,
                    "the DKIM key cannot be opened with this secret key: emails go unsigned (run `herald dkim generate` again, or use the secret key it was made with)"
                );
                None
            }
        });
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = next;
        Ok(())
    }

    fn config_of(&self, s: &Stored) -> Option<DkimConfig> {
        let private = open(&self.secret, &s.sealed_private)?;
        let algorithm = match s.algorithm.as_str() {
            "ed25519" => DkimSigningAlgorithm::Ed25519,
            _ => DkimSigningAlgorithm::Rsa,
        };
        let key = DkimSigningKey::new(&private, algorithm).ok()?;
        // Relaxed header canonicalization: mail servers fold and unfold headers
        // (the signature's own, too), which "simple" does not survive.
        let relaxed = DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        };
        let headers = SIGNED
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect();
        Some(DkimConfig::new(
            s.selector.clone(),
            s.domain.clone(),
            key,
            headers,
            relaxed,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_unaltered() {
        let sealed = seal(b"one secret", "the private key");
        assert_eq!(
            open(b"one secret", &sealed).as_deref(),
            Some("the private key")
        );
        assert_eq!(open(b"another secret", &sealed), None);
        let mut bytes = B64.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(open(b"one secret", &B64.encode(bytes)), None);
        assert_eq!(open(b"one secret", "not base64!"), None);
    }

    #[test]
    fn generated_keys_are_what_lettre_signs_with() {
        for (algorithm, signing) in [
            (Algorithm::Ed25519, DkimSigningAlgorithm::Ed25519),
            (Algorithm::Rsa, DkimSigningAlgorithm::Rsa),
        ] {
            let (private, public) = generate(algorithm).unwrap();
            assert!(DkimSigningKey::new(&private, signing).is_ok());
            assert!(B64.decode(&public).is_ok());
        }
    }

    #[test]
    fn domains_and_selectors_are_dns_names() {
        assert!(is_dns_label_list("mail.example.com"));
        assert!(is_dns_label_list("herald-2026"));
        for bad in ["", "a..b", "a b", "a;b", "a_b", &"x".repeat(64)] {
            assert!(!is_dns_label_list(bad), "{bad}");
        }
    }
}
