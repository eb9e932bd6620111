//! Amazon SES, through Amazon SNS: SES publishes bounces and complaints to an SNS
//! topic, and SNS posts them here. The admin names the topics; each message must
//! come from one of them and carry SNS's signature (version 1, RSA SHA-1, or 2,
//! RSA SHA-256) under the certificate at its `SigningCertURL` — which must be
//! https on an SNS host of the topic's region, is fetched once and kept. A
//! `SubscriptionConfirmation` is answered by visiting its `SubscribeURL` (only on
//! that host) once, so SES starts delivering. The certificates are fetched by
//! [`crate::sns`].

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
