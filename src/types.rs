//! Values parsed at the boundary: once one of these exists, it is valid.

use std::fmt;

use rand::RngExt;
use sha2::{Digest, Sha256};

/// Why a value was refused, in words for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// An email address, trimmed and lower-cased, so that comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(Invalid::new("Enter an email address."));
        }
        if s.len() > 254 {
            return Err(Invalid::new("An email address has at most 254 characters."));
        }
        let options = email_address::Options {
            allow_display_text: false,
            allow_domain_literal: false,
            ..Default::default()
        };
        if email_address::EmailAddress::parse_with_options(s, options).is_err() {
            return Err(Invalid::new(
                "Enter an email address like name@example.com.",
            ));
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(Invalid::new("Enter a name."));
        }
        if s.chars().count() > 100 {
            return Err(Invalid::new("A name has at most 100 characters."));
        }
        if s.chars().any(char::is_control) {
            return Err(Invalid::new("A name cannot contain control characters."));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A count as people write it: `1,204`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(-12345), "-12,345");
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        assert_eq!(
            EmailAddress::parse("admin@localhost").unwrap().as_str(),
            "admin@localhost"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "a b@example.com",
            "Ann <ann@example.com>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(PersonName::parse(" Ann Lee ").unwrap().as_str(), "Ann Lee");
        assert!(PersonName::parse("  ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse(&"x".repeat(100)).is_ok());
        assert!(PersonName::parse("a\u{7}b").is_err());
    }
}

pub const MAX_ATTRIBUTE_NAME_CHARS: usize = 64;
/// Column names that are contact fields, not attributes.
pub const RESERVED_NAMES: [&str; 3] = ["email", "first_name", "last_name"];

/// An attribute name: 1 to 64 letters, digits, spaces, `_`, `-` or `.`; not a
/// contact field's name.
pub fn parse_attribute_name(raw: &str) -> Result<String, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Invalid::new("Enter the attribute's name."));
    }
    if s.chars().count() > MAX_ATTRIBUTE_NAME_CHARS
        || !s
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '))
    {
        return Err(Invalid::new(format!(
            "An attribute name has 1 to {MAX_ATTRIBUTE_NAME_CHARS} letters, digits, spaces, _ - or ."
        )));
    }
    if RESERVED_NAMES.contains(&s.to_lowercase().as_str()) {
        return Err(Invalid::new(format!(
            "{s:?} is a contact field, not an attribute."
        )));
    }
    Ok(s.to_string())
}

/// Typed ids: a run's id cannot be passed where an automation's is wanted.
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)+) => {
        $(
            $(#[$doc])*
            #[derive(
                Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                serde::Serialize, serde::Deserialize, sqlx::Type,
            )]
            #[sqlx(transparent)]
            #[serde(transparent)]
            pub struct $name(pub i64);

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    self.0.fmt(f)
                }
            }
        )+
    };
}

ids! {
    /// A job run.
    RunId;
    /// An automation.
    AutomationId;
    /// A recorded event.
    EventId;
    /// A contact.
    ContactId;
    /// A system user.
    SystemUserId;
    /// A CSV import.
    ImportId;
}

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes`, as hex (how keys and bodies are fingerprinted).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// `n` random bytes from the CSPRNG, as hex (tokens, ids, keys).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill(&mut bytes[..]);
    hex(&bytes)
}
