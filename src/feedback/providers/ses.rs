//! Amazon SES, through Amazon SNS: SES publishes bounces and complaints to an SNS
//! topic, and SNS posts them here. The admin names the topics; each message must
//! come from one of them and carry SNS's signature (version 1, RSA SHA-1, or 2,
//! RSA SHA-256) under the certificate at its `SigningCertURL` — which must be
//! https on an SNS host of the topic's region, is fetched once and kept. A
//! `SubscriptionConfirmation` is answered by visiting its `SubscribeURL` (only on
//! that host) once, so SES starts delivering.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::ProviderNotice;
use crate::feedback::report::Notice;

/// An SNS message, as posted.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    #[serde(default)]
    pub subject: Option<String>,
    pub message: String,
    pub timestamp: String,
    #[serde(default)]
    pub token: Option<String>,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL")]
    pub signing_cert_url: String,
    #[serde(rename = "SubscribeURL", default)]
    pub subscribe_url: Option<String>,
}

impl Envelope {
    /// What SNS signed: the message's fields, each as its name and its value on
    /// lines of their own, in SNS's order (Subject only when there is one).
    pub fn signed_text(&self) -> Option<String> {
        let fields: Vec<(&str, Option<&str>)> = match self.kind.as_str() {
            "Notification" => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("Subject", self.subject.as_deref()),
                ("Timestamp", Some(&self.timestamp)),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(&self.kind)),
            ],
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => vec![
                ("Message", Some(&self.message)),
                ("MessageId", Some(&self.message_id)),
                ("SubscribeURL", Some(self.subscribe_url.as_deref()?)),
                ("Timestamp", Some(&self.timestamp)),
                ("Token", Some(self.token.as_deref()?)),
                ("TopicArn", Some(&self.topic_arn)),
                ("Type", Some(&self.kind)),
            ],
            _ => return None,
        };
        let mut text = String::new();
        for (name, value) in fields {
            if let Some(value) = value {
                text.push_str(name);
                text.push('\n');
                text.push_str(value);
                text.push('\n');
            }
        }
        Some(text)
    }

    /// Whether `key` (an RSA public key, PKCS#1 DER) signed this message.
    pub fn signed_by(&self, key: &[u8]) -> bool {
        use base64::Engine;
        use ring::signature;
        let algorithm: &dyn signature::VerificationAlgorithm = match self.signature_version.as_str()
        {
            "1" => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return false,
        };
        let (Some(text), Ok(given)) = (
            self.signed_text(),
            base64::engine::general_purpose::STANDARD.decode(self.signature.trim()),
        ) else {
            return false;
        };
        signature::UnparsedPublicKey::new(algorithm, key)
            .verify(text.as_bytes(), &given)
            .is_ok()
    }
}

/// The region of an SNS topic's ARN (`arn:aws:sns:eu-west-1:123456789012:name`).
pub fn region_of(topic_arn: &str) -> Option<&str> {
    let parts: Vec<&str> = topic_arn.split(':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[3]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[5].is_empty()
        && parts[5]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| parts[3])
}

/// Reads the topics an admin named (ARNs, one per line or separated by commas).
pub fn parse_topics(raw: &str) -> Result<Vec<String>, String> {
    let topics: Vec<String> = raw
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    if topics.is_empty() {
        return Err("Name the SNS topic SES sends bounces and complaints to: its ARN, such as arn:aws:sns:eu-west-1:123456789012:ses-bounces (SNS → Topics).".into());
    }
    if topics.len() > 10 {
        return Err("Name at most 10 topics.".into());
    }
    match topics.iter().find(|t| region_of(t).is_none()) {
        Some(bad) => Err(format!(
            "{bad} is not an SNS topic ARN: it reads arn:aws:sns:<region>:<account>:<topic>, such as arn:aws:sns:eu-west-1:123456789012:ses-bounces."
        )),
        None => Ok(topics),
    }
}

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

/// An SES notification (the SNS message's `Message`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    #[serde(default)]
    notification_type: String,
    /// Configuration-set event publishing says `eventType` instead.
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    complaint: Option<Complaint>,
    #[serde(default)]
    delivery_delay: Option<Delay>,
    #[serde(default)]
    mail: Mail,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    #[serde(default)]
    bounce_type: String,
    #[serde(default)]
    bounce_sub_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    #[serde(default)]
    feedback_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    #[serde(default)]
    complaint_feedback_type: Option<String>,
    #[serde(default)]
    feedback_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Delay {
    #[serde(default)]
    delay_type: String,
    #[serde(default)]
    delayed_recipients: Vec<Recipient>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    diagnostic_code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    /// SES's id for the email (its SMTP answer's "Ok <id>").
    #[serde(default)]
    message_id: String,
    #[serde(default)]
    headers: Vec<Header>,
    #[serde(default)]
    common_headers: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct Header {
    name: String,
    value: String,
}

/// Reads an SES notification (the `Message` of the SNS message `sns_id`): its
/// bounces, complaints and delays; other notifications (deliveries, sends) read
/// as none.
pub fn read(message: &str, sns_id: &str) -> Result<Vec<ProviderNotice>, String> {
    let n: Notification =
        serde_json::from_str(message).map_err(|e| format!("not an SES notification: {e}"))?;
    let kind = if n.notification_type.is_empty() {
        n.event_type.as_str()
    } else {
        n.notification_type.as_str()
    };
    let (notice, recipients, said, feedback): (Notice, _, String, &str) = match kind {
        "Bounce" => {
            let b = n.bounce.as_ref().ok_or("a Bounce without its bounce")?;
            (
                if b.bounce_type == "Permanent" {
                    Notice::HardBounce
                } else {
                    Notice::SoftBounce
                },
                &b.bounced_recipients,
                format!("{} {}", b.bounce_type, b.bounce_sub_type),
                b.feedback_id.as_str(),
            )
        }
        "Complaint" => {
            let c = n
                .complaint
                .as_ref()
                .ok_or("a Complaint without its complaint")?;
            (
                Notice::Complaint,
                &c.complained_recipients,
                format!(
                    "complaint {}",
                    c.complaint_feedback_type.as_deref().unwrap_or("")
                ),
                c.feedback_id.as_str(),
            )
        }
        "DeliveryDelay" => {
            let d = n
                .delivery_delay
                .as_ref()
                .ok_or("a DeliveryDelay without its deliveryDelay")?;
            (
                Notice::Delayed,
                &d.delayed_recipients,
                format!("delayed {}", d.delay_type),
                "",
            )
        }
        _ => return Ok(Vec::new()),
    };
    if recipients.is_empty() {
        return Err("the notification names no recipient".into());
    }
    let message_id = n
        .mail
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("message-id"))
        .map(|h| h.value.trim().to_string())
        .or_else(|| {
            n.mail.common_headers["messageId"]
                .as_str()
                .map(|s| s.trim().to_string())
        });
    let provider_id = (!n.mail.message_id.is_empty()).then(|| n.mail.message_id.clone());
    let id = if feedback.is_empty() {
        sns_id
    } else {
        feedback
    };
    Ok(recipients
        .iter()
        .map(|r| {
            let address = r.email_address.trim().to_lowercase();
            let status: String = r
                .status
                .as_deref()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .take(16)
                .collect();
            ProviderNotice {
                id: format!("{id}:{address}").chars().take(200).collect(),
                notice,
                address,
                message_id: message_id.clone(),
                provider_id: provider_id.clone(),
                status,
                diagnostic: format!(
                    "Amazon SES {}: {}",
                    said.trim(),
                    r.diagnostic_code.as_deref().unwrap_or("")
                )
                .trim_end_matches([' ', ':'])
                .chars()
                .take(300)
                .collect(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_regions_read() {
        assert_eq!(
            region_of("arn:aws:sns:eu-west-1:123456789012:ses-bounces"),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of("arn:aws-cn:sns:cn-north-1:123456789012:t"),
            Some("cn-north-1")
        );
        for bad in [
            "arn:aws:sqs:eu-west-1:123456789012:q",
            "arn:aws:sns:eu-west-1:1234:t",
            "arn:aws:sns::123456789012:t",
            "arn:aws:sns:eu-west-1:123456789012:",
            "arn:aws:sns:EU.evil.com/:123456789012:t",
        ] {
            assert_eq!(region_of(bad), None, "{bad}");
        }
        assert_eq!(
            parse_topics(
                " arn:aws:sns:eu-west-1:123456789012:a,\narn:aws:sns:us-east-1:123456789012:b "
            )
            .unwrap()
            .len(),
            2
        );
        assert!(parse_topics("").is_err());
        assert!(parse_topics("my-topic").unwrap_err().contains("my-topic"));
    }

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

    #[test]
    fn the_signed_text_follows_sns() {
        let mut e: Envelope = serde_json::from_value(serde_json::json!({
            "Type": "Notification", "MessageId": "m1", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t",
            "Message": "hello", "Timestamp": "2026-12-07T10:00:00.000Z", "SignatureVersion": "1",
            "Signature": "", "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/c.pem"
        }))
        .unwrap();
        assert_eq!(
            e.signed_text().unwrap(),
            "Message\nhello\nMessageId\nm1\nTimestamp\n2026-12-07T10:00:00.000Z\nTopicArn\narn:aws:sns:eu-west-1:123456789012:t\nType\nNotification\n"
        );
        e.subject = Some("Amazon SES Email Event Notification".into());
        assert!(
            e.signed_text().unwrap().contains(
                "MessageId\nm1\nSubject\nAmazon SES Email Event Notification\nTimestamp\n"
            )
        );
        e.kind = "SubscriptionConfirmation".into();
        assert_eq!(
            e.signed_text(),
            None,
            "a confirmation needs its token and URL"
        );
        e.kind = "Other".into();
        assert_eq!(e.signed_text(), None);
    }

    #[test]
    fn ses_notifications_read_into_notices() {
        let bounce = serde_json::json!({
            "notificationType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "fb-1",
                "bouncedRecipients": [{"emailAddress": "Jane@Example.com", "action": "failed", "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
            "mail": {"messageId": "0100018c-abc-000000", "headers": [{"name": "Message-ID", "value": "<x@y>"}]}
        })
        .to_string();
        let n = read(&bounce, "sns-1").unwrap();
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].notice, Notice::HardBounce);
        assert_eq!(n[0].address, "jane@example.com");
        assert_eq!(n[0].id, "fb-1:jane@example.com");
        assert_eq!(n[0].message_id.as_deref(), Some("<x@y>"));
        assert_eq!(n[0].provider_id.as_deref(), Some("0100018c-abc-000000"));
        assert_eq!(n[0].status, "5.1.1");
        assert_eq!(
            n[0].diagnostic,
            "Amazon SES Permanent General: smtp; 550 5.1.1 user unknown"
        );
        let soft = bounce.replace("Permanent", "Transient");
        assert_eq!(read(&soft, "s").unwrap()[0].notice, Notice::SoftBounce);
        let complaint = serde_json::json!({
            "eventType": "Complaint",
            "complaint": {"complainedRecipients": [{"emailAddress": "a@b.example"}], "feedbackId": "fb-2",
                "complaintFeedbackType": "abuse"},
            "mail": {"messageId": "m", "commonHeaders": {"messageId": "<c@d>"}}
        })
        .to_string();
        let c = read(&complaint, "s").unwrap();
        assert_eq!(c[0].notice, Notice::Complaint);
        assert_eq!(c[0].message_id.as_deref(), Some("<c@d>"));
        let delivery = r#"{"notificationType":"Delivery","mail":{"messageId":"m"}}"#;
        assert!(read(delivery, "s").unwrap().is_empty());
        assert!(read("{", "s").is_err());
        assert!(read(r#"{"notificationType":"Bounce"}"#, "s").is_err());
    }
}
