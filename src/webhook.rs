//! Outgoing webhooks: the address rules (https, and never the operator's own
//! network unless an admin allowed the host), the Standard Webhooks signature, and
//! an HTTP client that applies the rules to the address it really connects to.
//!
//! A host name is checked on the addresses it resolves to, inside the client's
//! resolver, so the connection goes to an address that was checked (a name that
//! resolves to a public address when saved and to 127.0.0.1 when sent is still
//! refused). An IP address in the URL never reaches a resolver and is checked
//! before the request. Redirects are not followed and no proxy is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long one request may take, connection and answer together.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an answer is kept on the run.
pub const KEPT_BYTES: usize = 1024;
/// The longest URL accepted.
pub const MAX_URL_CHARS: usize = 2000;

/// Whether `ip` is on the public internet: not loopback, private, link-local,
/// shared (carrier-grade NAT), unspecified, broadcast, multicast, documentation or
/// otherwise reserved. IPv4 inside IPv6 is judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // IPv4-compatible (`::127.0.0.1`, deprecated) and 6to4 (`2002:AABB:CCDD::`)
            // addresses carry an IPv4 address: judged as that address.
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                )));
            }
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                )));
            }
            let first = s[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 (embeds IPv4)
                || first == 0x2001 && v6.segments()[1] == 0) // Teredo (embeds IPv4, obscured)
        }
    }
}

/// The host of `url` as the allow list writes it (lower case, IPv6 without
/// brackets).
fn host_of(url: &url::Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(d) => Some(d.to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

/// Checks a webhook URL against the rules, with `allowed` the hosts an admin
/// allowed (Settings): https, or http to an allowed host; no user name or
/// password in it; an IP address must be public unless allowed; `localhost`
/// names only when allowed. The message says what to change.
pub fn check_url(raw: &str, allowed: &[String]) -> Result<url::Url, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Enter the URL to send the request to.".into());
    }
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("The URL has at most {MAX_URL_CHARS} characters."));
    }
    let mut url = url::Url::parse(raw)
        .map_err(|_| "Enter a full URL such as https://example.com/hooks/herald.".to_string())?;
    url.set_fragment(None);
    let Some(host) = host_of(&url) else {
        return Err("Enter a full URL such as https://example.com/hooks/herald.".into());
    };
    let is_allowed = allowed.contains(&host);
    match url.scheme() {
        "https" => {}
        "http" if is_allowed => {}
        "http" => {
            return Err(format!(
                "Use https: an admin may allow plain http for {host} in Settings."
            ));
        }
        _ => return Err("Use an https:// URL.".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "Leave the user name and password out of the URL: the request is signed instead."
                .into(),
        );
    }
    if !is_allowed {
        let private = match url.host() {
            Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
            _ => host == "localhost" || host.ends_with(".localhost"),
        };
        if private {
            return Err(format!(
                "{host} is on a private network: an admin may allow it in Settings."
            ));
        }
    }
    Ok(url)
}

/// A signing secret in the form Standard Webhooks libraries take.
pub fn secret_text(secret: &[u8]) -> String {
    format!("whsec_{}", BASE64.encode(secret))
}

/// The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256 of
/// `id.timestamp.body` under `secret` (Standard Webhooks).
pub fn signature(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub url: &'a url::Url,
    /// The message id (the same for every attempt of one run).
    pub id: &'a str,
    /// Seconds since the epoch.
    pub timestamp: i64,
    pub secret: &'a [u8],
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// The answer: its status and the start of its body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// `HTTP 200 OK`, then the first 1 KiB of the body when there is one.
    pub summary: String,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The rules refuse the address: no attempt will change that.
    #[error("{0}")]
    Refused(String),
    /// No answer within the time limit.
    #[error("no answer within {} seconds", TIMEOUT.as_secs())]
    TimedOut,
    /// The connection failed (worth another attempt).
    #[error("{0}")]
    Connection(String),
}

/// The error a refusing resolver gives (recognised in the client's error chain).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefusedAddress(String);

/// Resolves host names and keeps only public addresses, unless the name is
/// allowed.
struct GuardedResolver {
    allowed: Vec<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let allowed = self.allowed.contains(&host);
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = all
                .iter()
                .copied()
                .filter(|a| allowed || is_public(a.ip()))
                .collect();
            if kept.is_empty() {
                let shown = all.first().map(|a| a.ip().to_string()).unwrap_or_default();
                return Err(Box::new(RefusedAddress(format!(
                    "{host} resolves to {shown}, on a private network: an admin may allow the host in Settings"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client built for one allow list.
type Built = (Vec<String>, reqwest::Client);

/// Sends webhooks; cheap to clone. The underlying client (and its connections)
/// is kept while the allow list stays the same.
#[derive(Clone, Default)]
pub struct Client {
    current: Arc<Mutex<Option<Built>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("webhook::Client")
    }
}

impl Client {
    fn for_hosts(&self, allowed: &[String]) -> Result<reqwest::Client, SendError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((hosts, client)) = current.as_ref()
            && hosts == allowed
        {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                allowed: allowed.to_vec(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT / 2)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("Herald-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SendError::Connection(format!("the HTTP client cannot start: {e}")))?;
        *current = Some((allowed.to_vec(), client.clone()));
        Ok(client)
    }

    /// Sends `request` (POST) if the rules allow its address, with `allowed` the
    /// hosts an admin allowed.
    pub async fn send(
        &self,
        request: Request<'_>,
        allowed: &[String],
    ) -> Result<Answer, SendError> {
        let url = check_url(request.url.as_str(), allowed).map_err(SendError::Refused)?;
        let client = self.for_hosts(allowed)?;
        let sent = client
            .post(url)
            .header("content-type", request.content_type)
            .header("webhook-id", request.id)
            .header("webhook-timestamp", request.timestamp.to_string())
            .header(
                "webhook-signature",
                signature(request.secret, request.id, request.timestamp, &request.body),
            )
            .body(request.body)
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return Err(classify(&e)),
        };
        let status = response.status();
        let mut kept = Vec::new();
        while kept.len() < KEPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                Ok(None) => break,
                // The status is what counts; an unfinished body is cut short.
                Err(_) => break,
            }
        }
        kept.truncate(KEPT_BYTES);
        let body = String::from_utf8_lossy(&kept);
        let body = body.trim();
        let head = format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
        Ok(Answer {
            status: status.as_u16(),
            summary: if body.is_empty() {
                head.trim_end().to_string()
            } else {
                format!("{}: {body}", head.trim_end())
            },
        })
    }
}

/// What a failed request means for the run.
fn classify(e: &reqwest::Error) -> SendError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<RefusedAddress>() {
            return SendError::Refused(refused.0.clone());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return SendError::TimedOut;
    }
    // The innermost cause says most ("connection refused", "certificate…").
    let mut innermost: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = innermost.source() {
        innermost = s;
    }
    SendError::Connection(format!("could not connect: {innermost}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "::10.0.0.1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!is_public(ip(private)), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "172.32.0.1",
            "2002:808:808::1",
            "::8.8.8.8",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn urls_follow_the_rules() {
        let none: Vec<String> = Vec::new();
        assert!(check_url("https://example.com/hook", &none).is_ok());
        for (bad, says) in [
            ("", "Enter the URL"),
            ("example.com/hook", "full URL"),
            ("http://example.com/hook", "Use https"),
            ("ftp://example.com/", "Use an https"),
            ("https://user:pw@example.com/", "user name"),
            ("https://127.0.0.1/", "private network"),
            ("https://[::1]:8443/", "private network"),
            ("https://169.254.169.254/latest", "private network"),
            ("https://localhost/", "private network"),
            ("https://api.localhost/", "private network"),
        ] {
            let e = check_url(bad, &none).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let allowed = vec!["127.0.0.1".to_string(), "crm.internal".to_string()];
        assert!(check_url("http://127.0.0.1:9000/hook", &allowed).is_ok());
        assert!(check_url("http://CRM.internal/hook", &allowed).is_ok());
        assert!(check_url("http://10.0.0.1/hook", &allowed).is_err());
    }

    #[tokio::test]
    async fn the_resolver_keeps_private_addresses_only_for_allowed_names() {
        use reqwest::dns::Resolve;
        let name = |n: &str| n.parse::<reqwest::dns::Name>().unwrap();
        let guarded = GuardedResolver {
            allowed: Vec::new(),
        };
        let refused = guarded.resolve(name("localhost")).await.err().unwrap();
        assert!(refused.to_string().contains("private network"), "{refused}");
        let allowed = GuardedResolver {
            allowed: vec!["localhost".into()],
        };
        let addrs: Vec<SocketAddr> = allowed.resolve(name("localhost")).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_when_connecting() {
        // A name for a loopback address other than "localhost" (Debian's /etc/hosts
        // gives the machine's own name 127.0.1.1 or 127.0.0.1): the URL check lets
        // the name through; its address is refused.
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let name = hosts
            .lines()
            .filter(|l| l.starts_with("127."))
            .flat_map(|l| l.split_whitespace().skip(1))
            .find(|n| !n.contains("localhost"))
            .expect("/etc/hosts names this machine on a loopback address");
        let url = url::Url::parse(&format!("https://{name}:9/hook")).unwrap();
        assert!(check_url(url.as_str(), &[]).is_ok());
        let request = Request {
            url: &url,
            id: "msg_1",
            timestamp: 1,
            secret: b"key",
            content_type: "application/json",
            body: b"{}".to_vec(),
        };
        match Client::default().send(request, &[]).await {
            Err(SendError::Refused(m)) => assert!(m.contains("private network"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(secret_text(&secret).starts_with("whsec_MfKQ9r8G"));
    }
}
