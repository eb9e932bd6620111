//! Amazon SNS's signing certificates: fetched once each — only over https from
//! an SNS host of the topic's region (`sns.<region>.amazonaws.com`) — checked (an
//! RSA certificate valid now) and kept until they end; and the visits that
//! confirm a subscription, on the same hosts only. A service: no feature here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a certificate was not used.
#[derive(Debug)]
pub enum CertificateError {
    /// Not an SNS certificate of the region, or not valid: the message is refused.
    Refused(String),
    /// It could not be fetched now: SNS should try again.
    Unreachable(String),
}

/// A certificate's key, kept until the certificate ends.
struct Kept {
    key: Arc<[u8]>,
    until_ms: i64,
}

/// The most certificates kept (SNS uses one per region at a time).
const KEPT: usize = 16;
/// The largest certificate read.
const LARGEST: usize = 64 * 1024;

/// SNS's signing certificates, fetched once each and kept; also visits
/// subscription URLs. Only SNS hosts are asked.
pub struct Certificates {
    client: reqwest::Client,
    kept: Mutex<HashMap<String, Kept>>,
    /// Tests only: an origin (`http://127.0.0.1:port`) taken as an SNS host.
    test_origin: Option<url::Url>,
}

impl Certificates {
    pub fn new(test_origin: Option<url::Url>) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        Self {
            client,
            kept: Mutex::default(),
            test_origin,
        }
    }

    /// `url` when it is https on an SNS host of `region` (`sns.<region>.amazonaws.com`).
    fn on_sns_host(&self, url: &str, region: &str) -> Result<url::Url, String> {
        let parsed = url::Url::parse(url).map_err(|_| format!("{url} is not a URL"))?;
        if let Some(origin) = &self.test_origin
            && parsed.origin() == origin.origin()
        {
            return Ok(parsed);
        }
        let host = parsed.host_str().unwrap_or("");
        let sns = [
            format!("sns.{region}.amazonaws.com"),
            format!("sns.{region}.amazonaws.com.cn"),
        ];
        if parsed.scheme() == "https"
            && parsed.port().is_none()
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && sns.iter().any(|h| h == host)
        {
            Ok(parsed)
        } else {
            Err(format!("{url} is not on an SNS host of {region}"))
        }
    }

    /// The key of the certificate at `url` (an SNS host of `region`): kept, or
    /// fetched and checked (an RSA certificate valid at `now_ms`).
    pub async fn key(
        &self,
        url: &str,
        region: &str,
        now_ms: i64,
    ) -> Result<Arc<[u8]>, CertificateError> {
        let at = self
            .on_sns_host(url, region)
            .map_err(CertificateError::Refused)?;
        if !at.path().ends_with(".pem") {
            return Err(CertificateError::Refused(format!(
                "{url} is not a certificate (.pem)"
            )));
        }
        if let Some(kept) = self.kept.lock().expect("certificates").get(url)
            && kept.until_ms > now_ms
        {
            return Ok(kept.key.clone());
        }
        let pem = self.get(at).await.map_err(CertificateError::Unreachable)?;
        let (key, until_ms) = rsa_key(&pem, now_ms).map_err(CertificateError::Refused)?;
        let mut kept = self.kept.lock().expect("certificates");
        if kept.len() >= KEPT {
            kept.clear();
        }
        kept.insert(
            url.to_string(),
            Kept {
                key: key.clone(),
                until_ms,
            },
        );
        Ok(key)
    }

    /// Visits a subscription's `url` (on an SNS host of `region`) to confirm it.
    pub async fn confirm(&self, url: &str, region: &str) -> Result<(), CertificateError> {
        let at = self
            .on_sns_host(url, region)
            .map_err(CertificateError::Refused)?;
        self.get(at)
            .await
            .map(|_| ())
            .map_err(CertificateError::Unreachable)
    }

    /// GETs `url`: its body (at most [`LARGEST`] bytes) when it answers 200.
    async fn get(&self, url: url::Url) -> Result<Vec<u8>, String> {
        let shown = url.to_string();
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("{shown} could not be fetched: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("{shown} answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{shown} could not be read: {e}"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > LARGEST {
                return Err(format!("{shown} is larger than {LARGEST} bytes"));
            }
        }
        Ok(body)
    }
}

/// The RSA public key (PKCS#1 DER) of a PEM certificate valid at `now_ms`, and
/// when the certificate ends.
fn rsa_key(pem: &[u8], now_ms: i64) -> Result<(Arc<[u8]>, i64), String> {
    use x509_cert::der::DecodePem;
    let cert = x509_cert::Certificate::from_pem(pem)
        .map_err(|e| format!("the signing certificate cannot be read: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let ms = |t: &x509_cert::time::Time| t.to_unix_duration().as_millis() as i64;
    let (from, until) = (ms(&tbs.validity.not_before), ms(&tbs.validity.not_after));
    if now_ms < from || now_ms > until {
        return Err("the signing certificate is not valid now".into());
    }
    let spki = &tbs.subject_public_key_info;
    if spki.algorithm.oid != x509_cert::spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1") {
        return Err("the signing certificate's key is not RSA".into());
    }
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the signing certificate's key cannot be read")?;
    Ok((Arc::from(key), until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_sns_hosts_of_the_region_are_asked() {
        let c = Certificates::new(None);
        let region = "eu-west-1";
        assert!(
            c.on_sns_host(
                "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
                region
            )
            .is_ok()
        );
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/a.pem",
            "https://sns.us-east-1.amazonaws.com/a.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.example/a.pem",
            "https://evil.example/sns.eu-west-1.amazonaws.com/a.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/a.pem",
            "https://user@sns.eu-west-1.amazonaws.com/a.pem",
            "http://127.0.0.1:8080/a.pem",
            "not a url",
        ] {
            assert!(c.on_sns_host(bad, region).is_err(), "{bad}");
        }
        let seam = Certificates::new(Some("http://127.0.0.1:4000".parse().unwrap()));
        assert!(
            seam.on_sns_host("http://127.0.0.1:4000/c.pem", region)
                .is_ok()
        );
        assert!(
            seam.on_sns_host("http://127.0.0.1:4001/c.pem", region)
                .is_err()
        );
    }
}
