//! Bounce addresses (VERP): each email's envelope sender names it, signed.

use crate::links::LinkSigner;

/// Makes and reads bounce addresses (VERP): `bounces+<reference>.<tag>@<domain>`,
/// the tag an HMAC of the reference under a key derived from the secret key, so
/// an address cannot be guessed or altered to name another delivery.
#[derive(Clone, Debug)]
pub struct BounceAddresses(LinkSigner);

/// The local part before the `+`.
pub const BOUNCE_PREFIX: &str = "bounces";

impl BounceAddresses {
    pub fn new(secret: &[u8]) -> Self {
        Self(LinkSigner::new(secret, "bounce address"))
    }

    /// The bounce address of the delivery `reference` at `domain`.
    pub fn address(&self, reference: &str, domain: &str) -> String {
        format!("{BOUNCE_PREFIX}+{}@{domain}", self.0.sign(reference))
    }

    /// The reference a bounce address names, if Herald made it (any case: some
    /// mail systems change the case of the local part).
    pub fn reference(&self, address: &str) -> Option<String> {
        let token = bounce_token(address)?;
        self.0.verify(&token).map(str::to_string)
    }
}

/// The token of an address shaped like a bounce address (`bounces+token@…`), in
/// lower case, whoever made it.
fn bounce_token(address: &str) -> Option<String> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, _) = address.rsplit_once('@')?;
    local
        .to_ascii_lowercase()
        .strip_prefix(&format!("{BOUNCE_PREFIX}+"))
        .map(str::to_string)
}

/// Whether `address` is shaped like a bounce address, signed or not (one that
/// [`BounceAddresses::reference`] refuses was forged or altered).
pub fn is_bounce_address(address: &str) -> bool {
    bounce_token(address).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliveries::new_reference;

    #[test]
    fn a_bounce_address_names_its_delivery_and_nothing_else() {
        let b = BounceAddresses::new(b"a secret key of some length");
        let reference = new_reference();
        let address = b.address(&reference, "bounce.example.com");
        let local = address.split('@').next().unwrap();
        assert!(local.len() <= 64, "{local} is too long for a local part");
        assert_eq!(b.reference(&address).as_deref(), Some(reference.as_str()));
        assert_eq!(
            b.reference(&format!("<{}>", address.to_uppercase()))
                .as_deref(),
            Some(reference.as_str()),
            "case and brackets do not matter"
        );
        // Another reference with the same tag, or another key, is refused.
        let forged = address.replacen(&reference[..4], "0000", 1);
        assert_eq!(b.reference(&forged), None);
        let other = BounceAddresses::new(b"another secret key of some length");
        assert_eq!(other.reference(&address), None);
        assert_eq!(b.reference("postmaster@bounce.example.com"), None);
    }
}
