//! Secrets Herald must read again (a DKIM private key, a provider's signing key)
//! kept sealed: ChaCha20-Poly1305 under a key derived from Herald's secret key
//! (HKDF-SHA256, one key per purpose), so the database alone does not give them
//! away and every instance with the same secret key can open them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead;

/// The sealing key for `purpose`, derived from `secret`.
fn key(secret: &[u8], purpose: &[u8]) -> aead::LessSafeKey {
    struct Len;
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            32
        }
    }
    let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"herald");
    let mut key = [0u8; 32];
    salt.extract(secret)
        .expand(&[purpose], Len)
        .and_then(|okm| okm.fill(&mut key))
        .expect("32 bytes fit HKDF-SHA256");
    aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &key).expect("a 32-byte key"),
    )
}

/// `plain` sealed for `purpose`: base64 of the nonce and the ciphertext with its tag.
pub fn seal(secret: &[u8], purpose: &[u8], plain: &str) -> String {
    let mut nonce = [0u8; 12];
    rand::RngExt::fill(&mut rand::rng(), &mut nonce);
    let mut data = plain.as_bytes().to_vec();
    key(secret, purpose)
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut data,
        )
        .expect("sealing cannot fail for this size");
    let mut out = nonce.to_vec();
    out.extend(data);
    B64.encode(out)
}

/// What [`seal`] sealed for `purpose`, or `None` when another secret or purpose
/// sealed it or it was altered.
pub fn open(secret: &[u8], purpose: &[u8], sealed: &str) -> Option<String> {
    let bytes = B64.decode(sealed).ok()?;
    if bytes.len() < 12 + aead::CHACHA20_POLY1305.tag_len() {
        return None;
    }
    let (nonce, data) = bytes.split_at(12);
    let mut data = data.to_vec();
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = key(secret, purpose)
        .open_in_place(nonce, aead::Aad::empty(), &mut data)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// Seals and opens with Herald's secret key (shared by request handlers).
#[derive(Clone)]
pub struct Sealer(std::sync::Arc<Vec<u8>>);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn new(secret: Vec<u8>) -> Self {
        Self(std::sync::Arc::new(secret))
    }

    pub fn seal(&self, purpose: &[u8], plain: &str) -> String {
        seal(&self.0, purpose, plain)
    }

    pub fn open(&self, purpose: &[u8], sealed: &str) -> Option<String> {
        open(&self.0, purpose, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_secret_and_purpose_open_it() {
        let sealed = seal(b"one secret", b"a purpose", "the private key");
        assert_eq!(
            open(b"one secret", b"a purpose", &sealed).as_deref(),
            Some("the private key")
        );
        assert_eq!(open(b"another secret", b"a purpose", &sealed), None);
        assert_eq!(open(b"one secret", b"another purpose", &sealed), None);
        assert_ne!(
            seal(b"one secret", b"a purpose", "x"),
            seal(b"one secret", b"a purpose", "x")
        );
    }
}
