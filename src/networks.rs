//! Lists of networks, read from text: the image proxies (Apple Mail Privacy
//! Protection and the like) whose opens are machines'. Herald ships a list
//! (`image_proxies.txt`, with its source and date); `image_proxies_file`
//! replaces it. The ground floor: no feature here.

use std::net::IpAddr;

/// The list Herald ships.
pub const SHIPPED: &str = include_str!("image_proxies.txt");

/// A list of networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<(IpAddr, u8)>);

impl Networks {
    /// The shipped list.
    pub fn shipped() -> Self {
        Self::parse(SHIPPED).expect("the shipped list reads")
    }

    /// Reads one network per line (`17.0.0.0/8`, `2620:149::/32`, or an address
    /// alone); `#` starts a comment. A line that is none is refused, by number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = || {
                format!(
                    "line {}: {line:?} is not a network such as 17.0.0.0/8",
                    n + 1
                )
            };
            let (address, prefix) = match line.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (line, None),
            };
            let address: IpAddr = address.trim().parse().map_err(|_| bad())?;
            let most = if address.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= most)
                    .ok_or_else(bad)?,
                None => most,
            };
            networks.push((address, prefix));
        }
        Ok(Self(networks))
    }

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|(net, prefix)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_found_in_their_networks() {
        let n = Networks::shipped();
        assert!(n.len() >= 4);
        for inside in ["17.58.1.2", "2620:149:a:b::1", "::ffff:17.0.0.1"] {
            assert!(n.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["18.0.0.1", "16.255.255.255", "2620:14a::1", "127.0.0.1"] {
            assert!(!n.contains(outside.parse().unwrap()), "{outside}");
        }
        let one = Networks::parse("10.1.2.3 # just one\n0.0.0.0/0\n").unwrap();
        assert!(
            one.contains("8.8.8.8".parse().unwrap()),
            "/0 is every address"
        );
        assert!(
            Networks::parse("10.0.0.0/33")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(
            Networks::parse("# c\nnot a network")
                .unwrap_err()
                .contains("line 2")
        );
    }
}
