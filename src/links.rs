//! Signed links: a payload and its HMAC-SHA256 under a key derived from the secret
//! key, so a link (an unsubscribe link, say) proves itself without a database
//! lookup of a guessable id, and cannot be altered.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Signs and checks link tokens.
#[derive(Clone)]
pub struct LinkSigner {
    key: std::sync::Arc<Vec<u8>>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner([redacted])")
    }
}

const TAG_HEX: usize = 32;

impl LinkSigner {
    /// A signer for `purpose`, keyed from `secret` (the cookie key material).
    pub fn new(secret: &[u8], purpose: &str) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(b"herald link key: ");
        mac.update(purpose.as_bytes());
        Self {
            key: std::sync::Arc::new(mac.finalize().into_bytes().to_vec()),
        }
    }

    fn tag(&self, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        crate::types::hex(&mac.finalize().into_bytes()[..TAG_HEX / 2])
    }

    /// `payload.tag`; the payload must not hold a `.`-free tag of its own, and is
    /// made of URL-safe characters by the caller.
    pub fn sign(&self, payload: &str) -> String {
        format!("{payload}.{}", self.tag(payload))
    }

    /// A 32-byte key for `salt`, under this signer's purpose: a secret Herald can
    /// make again from the salt it stores, so the secret itself is never stored.
    pub fn derive(&self, salt: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"derived: ");
        mac.update(salt.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The payload of a token this signer made; `None` for anything else (compared
    /// in constant time).
    pub fn verify<'a>(&self, token: &'a str) -> Option<&'a str> {
        let (payload, tag) = token.rsplit_once('.')?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        let expected = mac.finalize().into_bytes();
        let given: Vec<u8> = (0..tag.len())
            .step_by(2)
            .map(|i| {
                tag.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<_>>()?;
        use subtle::ConstantTimeEq;
        (given.len() == TAG_HEX / 2 && bool::from(given.ct_eq(&expected[..TAG_HEX / 2])))
            .then_some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_untouched_tokens_verify() {
        let signer = LinkSigner::new(b"a secret key of some length", "unsubscribe");
        let token = signer.sign("c42-g7");
        assert_eq!(signer.verify(&token), Some("c42-g7"));
        assert_eq!(signer.verify(&token.replace("c42", "c43")), None);
        assert_eq!(signer.verify("c42-g7"), None);
        assert_eq!(signer.verify("c42-g7.zz"), None);
        let other = LinkSigner::new(b"another key", "unsubscribe");
        assert_eq!(other.verify(&token), None);
        let purpose = LinkSigner::new(b"a secret key of some length", "something else");
        assert_eq!(purpose.verify(&token), None);
        assert_eq!(signer.derive("salt"), signer.derive("salt"));
        assert_ne!(signer.derive("salt"), signer.derive("salt2"));
        assert_ne!(signer.derive("salt"), purpose.derive("salt"));
    }
}

// The double opt-in confirmation link: which pending membership it confirms and
// until when, signed with a key of its own (an unsubscribe or tracking token is
// never taken for one).

/// Signs and reads confirmation tokens.
#[derive(Clone, Debug)]
pub struct Links(LinkSigner);

/// What a confirmation link names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmToken {
    pub pending: i64,
    pub contact: i64,
    pub group: i64,
    /// Seconds since the epoch.
    pub expires_s: i64,
}

impl ConfirmToken {
    /// Whether the link's lifetime is over at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_s.saturating_mul(1000) <= now_ms
    }
}

impl Links {
    pub fn new(secret: &[u8]) -> Self {
        Self(LinkSigner::new(secret, "double opt-in confirmation"))
    }

    pub fn sign(&self, t: &ConfirmToken) -> String {
        self.0.sign(&format!(
            "{}-{}-{}-{}",
            t.pending, t.contact, t.group, t.expires_s
        ))
    }

    /// The token's contents when its signature is this signer's; `None` for an
    /// altered or foreign one.
    pub fn read(&self, token: &str) -> Option<ConfirmToken> {
        let payload = self.0.verify(token)?;
        let mut parts = payload.split('-').map(str::parse::<i64>);
        let t = ConfirmToken {
            pending: parts.next()?.ok()?,
            contact: parts.next()?.ok()?,
            group: parts.next()?.ok()?,
            expires_s: parts.next()?.ok()?,
        };
        parts.next().is_none().then_some(t)
    }
}

#[cfg(test)]
mod confirm_tests {
    use super::*;

    #[test]
    fn a_confirmation_token_reads_back_and_an_altered_one_does_not() {
        let links = Links::new(b"secret");
        let t = ConfirmToken {
            pending: 7,
            contact: 42,
            group: 3,
            expires_s: 1_900_000_000,
        };
        let signed = links.sign(&t);
        assert_eq!(links.read(&signed), Some(t));
        assert_eq!(links.read(&signed.replacen("7-42", "7-43", 1)), None);
        assert_eq!(Links::new(b"other").read(&signed), None);
        let unsubscribe = LinkSigner::new(b"secret", "unsubscribe").sign("7-42-3-1900000000");
        assert_eq!(links.read(&unsubscribe), None, "another purpose's token");
        assert!(t.expired(1_900_000_000_000));
        assert!(!t.expired(1_899_999_999_999));
    }
}
