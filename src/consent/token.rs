//! The confirmation link's token: which pending membership it confirms and until
//! when, signed with a key of its own (an unsubscribe or tracking token is never
//! taken for one).

use crate::links::LinkSigner;

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
mod tests {
    use super::*;

    #[test]
    fn a_token_reads_back_and_an_altered_one_does_not() {
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
