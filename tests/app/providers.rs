//! Bounces and complaints from a sending provider's webhook (Postmark): off until
//! an admin makes its credentials (shown once); a missing or wrong credential is
//! 401 and records nothing; a bounce is taken like a DSN and a replay changes
//! nothing.

use herald::auth::users::Role;
use herald::suppressions::{self, Reason};
use reqwest::StatusCode;

use crate::helpers::{TestApp, text_of};
use crate::messages::{new_contact, welcome_automation, write_message};
use crate::smtp::SmtpServer;

fn postmark_bounce(id: i64, kind: &str, email: &str, queued_as: &str) -> serde_json::Value {
    serde_json::json!({
        "RecordType": "Bounce", "ID": id, "Type": kind, "TypeCode": 1, "Name": "Hard bounce",
        "MessageID": queued_as,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email, "From": "news@herald.test", "BouncedAt": "2026-12-07T16:33:54.9070259Z",
    })
}

/// An admin, and Ada, welcomed with a prepared message: the admin's client, Ada's
/// id and the Message-ID of her email (with its angle brackets).
async fn ada_welcomed(app: &TestApp, smtp: &SmtpServer) -> (reqwest::Client, i64, String) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let message = write_message(app, &admin, "Welcome", "Welcome", "Hello", "").await;
    welcome_automation(app, &admin, message).await;
    let ada = new_contact(app, &admin, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let sent = smtp
        .last_to("ada@example.com")
        .expect("the welcome went out");
    (admin, ada, crate::bounces::message_id_in(&sent.data))
}

async fn reports(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM mail_reports")
        .fetch_one(app.state.db.read())
        .await
        .unwrap()
}

/// How the first report found its email.
async fn matched_by(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT matched_by FROM mail_reports ORDER BY id LIMIT 1")
        .fetch_one(app.state.db.read())
        .await
        .unwrap()
}

async fn a_postmark_bounce_is_taken_once_and_only_with_its_credentials(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (admin, ada, _) = ada_welcomed(&app, &smtp).await;
    let hook = app.url("/api/v1/feedback/postmark");
    // Postmark names the email by the id its SMTP answer gave ("queued as …").
    let queued_as = smtp.last_to("ada@example.com").unwrap().queued_as;
    let body = postmark_bounce(
        4323372036854775807,
        "HardBounce",
        "Ada@Example.com",
        &queued_as,
    );
    let post = |password: Option<&str>, body: &serde_json::Value| {
        let mut r = app.client.post(&hook).json(body);
        if let Some(p) = password {
            r = r.basic_auth("herald", Some(p));
        }
        r.send()
    };
    // Off: no such webhook.
    assert_eq!(
        post(Some("x"), &body).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // On: the credentials are shown once.
    let page = "/admin/deliverability";
    let r = app
        .submit_with(
            &admin,
            page,
            "/admin/deliverability/providers/postmark",
            &[("action", "make")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let password = text_of(&html, "#webhook-password").expect("shown once");
    assert!(
        text_of(&html, "#webhook-url")
            .unwrap()
            .ends_with("/api/v1/feedback/postmark")
    );
    let (_, again) = app.page_with(&admin, page).await;
    assert!(!again.contains(&password), "never shown again");
    assert!(
        text_of(&again, "#providers")
            .unwrap()
            .contains("nothing received yet")
    );
    // Missing or wrong credentials: 401, nothing recorded.
    let r = post(None, &body).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        post(Some("wrong"), &body).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(reports(&app).await, 0);
    assert!(
        suppressions::find(&app.state.db, "ada@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // The bounce: suppressed, the email's fate, Response Received with the provider.
    let r = post(Some(&password), &body).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken, serde_json::json!({"recorded": 1, "matched": 1}));
    assert_eq!(matched_by(&app).await, "provider_id");
    let s = suppressions::find(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.reason, Reason::HardBounce);
    assert!(s.detail.contains("Postmark HardBounce"), "{s:?}");
    let d = &herald::deliveries::of_contact(&app.state.db, ada, 1)
        .await
        .unwrap()[0];
    assert_eq!(d.fate(), herald::deliveries::Fate::HardBounce);
    let events = app.events().await;
    let fired = events
        .iter()
        .find(|e| e.0 == "response_received")
        .expect("the event");
    assert_eq!(fired.1, Some(ada));
    assert_eq!(fired.3["source"], "postmark");
    // A replay changes nothing; a body that is not Postmark's is 400.
    let r = post(Some(&password), &body).await.unwrap();
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken["recorded"], 0, "{taken}");
    assert_eq!(reports(&app).await, 1);
    let r = post(Some(&password), &serde_json::json!({"hello": "world"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Proved but unreadable: kept for an admin with the unmatched reports.
    assert_eq!(reports(&app).await, 2);
    let (_, kept) = app.page_with(&admin, "/admin/reports").await;
    assert!(
        text_of(&kept, "#reports")
            .unwrap()
            .contains("Postmark webhook")
    );
    // The page says when it last called; turned off, the webhook is gone.
    let (_, html) = app.page_with(&admin, page).await;
    let providers = text_of(&html, "#providers").unwrap();
    assert!(providers.contains("last call"), "{providers}");
    let r = app
        .submit_with(
            &admin,
            page,
            "/admin/deliverability/providers/postmark",
            &[("action", "off")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        post(Some(&password), &body).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn a_sendgrid_event_is_taken_only_with_its_signature(app: TestApp, smtp: SmtpServer) {
    use base64::Engine;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let (admin, ada, message_id) = ada_welcomed(&app, &smtp).await;
    // SendGrid's key pair, made here; the admin pastes the public half.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let key = herald::feedback::providers::sendgrid::p256_spki_base64(pair.public_key().as_ref());
    let page = "/admin/deliverability";
    let action = "/admin/deliverability/providers/sendgrid";
    let r = app
        .submit_with(
            &admin,
            page,
            action,
            &[("public_key", "not a key"), ("action", "make")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(text_of(&html, "#key-sendgrid-error").is_some(), "{html}");
    let r = app
        .submit_with(
            &admin,
            page,
            action,
            &[("public_key", &key), ("action", "make")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // A bounce of Ada's email (its Message-ID as smtp-id) and an open, signed.
    let body = serde_json::json!([
        {"email": "ada@example.com", "timestamp": 1_796_000_000, "event": "bounce", "type": "bounce",
         "sg_event_id": "sg-1", "sg_message_id": "abc.filter", "smtp-id": message_id,
         "reason": "550 5.1.1 The email account does not exist", "status": "5.1.1"},
        {"email": "ada@example.com", "timestamp": 1_796_000_000, "event": "open", "sg_event_id": "sg-2"}
    ])
    .to_string();
    let timestamp = "1796000000";
    let sign = |body: &str| {
        let sig = pair
            .sign(&rng, &[timestamp.as_bytes(), body.as_bytes()].concat())
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(sig.as_ref())
    };
    let hook = app.url("/api/v1/feedback/sendgrid");
    let post = |signature: Option<String>, body: String| {
        let mut r = app
            .client
            .post(&hook)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            r = r
                .header("X-Twilio-Email-Event-Webhook-Signature", s)
                .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp);
        }
        r.send()
    };
    assert_eq!(
        post(None, body.clone()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let altered = body.replace("5.1.1", "4.2.2");
    assert_eq!(
        post(Some(sign(&body)), altered).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "a signature of another body"
    );
    assert_eq!(reports(&app).await, 0);
    let r = post(Some(sign(&body)), body.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken, serde_json::json!({"recorded": 1, "matched": 1}));
    assert_eq!(
        matched_by(&app).await,
        "message_id",
        "found by the Message-ID SendGrid returns"
    );
    let s = suppressions::find(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.reason, Reason::HardBounce);
    let fired = app.events().await;
    let fired = fired.iter().find(|e| e.0 == "response_received").unwrap();
    assert_eq!(
        (fired.1, fired.3["source"].as_str()),
        (Some(ada), Some("sendgrid"))
    );
    // The same delivery again: nothing new.
    let r = post(Some(sign(&body)), body.clone()).await.unwrap();
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken["recorded"], 0);
    let (_, html) = app.page_with(&admin, page).await;
    assert!(
        text_of(&html, "#providers")
            .unwrap()
            .contains("its credentials checked")
    );
}

async fn a_mailgun_complaint_is_taken_only_with_its_signature(app: TestApp, smtp: SmtpServer) {
    use hmac::{Hmac, Mac};
    let (admin, ada, message_id) = ada_welcomed(&app, &smtp).await;
    let message_id = message_id.trim_matches(['<', '>']).to_string();
    let key = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";
    let r = app
        .submit_with(
            &admin,
            "/admin/deliverability",
            "/admin/deliverability/providers/mailgun",
            &[("public_key", key), ("action", "make")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !app.all_stored_text().await.contains(key),
        "the signing key is kept sealed"
    );
    let body = |signature: &str| {
        serde_json::json!({
            "signature": {"timestamp": "1796000000", "token": "0123456789abcdef0123456789abcdef0123456789abcdef01", "signature": signature},
            "event-data": {"event": "complained", "id": "-Agny091SquKnsrW2NEKUA", "recipient": "ada@example.com",
                "message": {"headers": {"message-id": message_id}}}
        })
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(b"1796000000");
    mac.update(b"0123456789abcdef0123456789abcdef0123456789abcdef01");
    let good: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hook = app.url("/api/v1/feedback/mailgun");
    let post = |body: serde_json::Value| app.client.post(&hook).json(&body).send();
    let wrong = good.replace(&good[..4], "0000");
    assert_eq!(
        post(body(&wrong)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(reports(&app).await, 0);
    let r = post(body(&good)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken, serde_json::json!({"recorded": 1, "matched": 1}));
    let s = suppressions::find(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.reason, Reason::Complaint);
    let contact = herald::contacts::find(&app.state.db, ada)
        .await
        .unwrap()
        .unwrap();
    assert!(contact.is_opted_out());
    let r = post(body(&good)).await.unwrap();
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken["recorded"], 0, "a replay changes nothing");
}

with_smtp!(
    a_mailgun_complaint_is_taken_only_with_its_signature,
    a_postmark_bounce_is_taken_once_and_only_with_its_credentials,
    a_sendgrid_event_is_taken_only_with_its_signature
);

/// A stand-in for Amazon SNS's host, on 127.0.0.1: it serves the signing
/// certificate and takes subscription visits, and remembers each path asked.
struct SnsHost {
    origin: String,
    asked: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl SnsHost {
    async fn start() -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let asked: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let seen = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                    seen.lock().unwrap().push(path.clone());
                    let body = if path.ends_with(".pem") {
                        include_str!("../fixtures/sns-test-cert.pem").to_string()
                    } else {
                        "<ConfirmSubscriptionResponse/>".to_string()
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self { origin, asked }
    }

    fn asked(&self, path: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ses-feedback";

/// Signs an SNS message as SNS does (written out here from AWS's documentation,
/// not taken from Herald): each field's name and value on lines of their own, in
/// SNS's order; version 1 with RSA SHA-1, version 2 with RSA SHA-256.
fn sns_signed(mut m: serde_json::Value, version: &str) -> serde_json::Value {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    let fields: &[&str] = if m["Type"] == "Notification" {
        &[
            "Message",
            "MessageId",
            "Subject",
            "Timestamp",
            "TopicArn",
            "Type",
        ]
    } else {
        &[
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type",
        ]
    };
    let mut text = String::new();
    for f in fields {
        if let Some(v) = m[f].as_str() {
            text.push_str(&format!("{f}\n{v}\n"));
        }
    }
    let key =
        rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("../fixtures/sns-test-key.pem")).unwrap();
    let digest_info = match version {
        "1" => {
            let mut d = vec![
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ];
            d.extend_from_slice(
                ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes())
                    .as_ref(),
            );
            d
        }
        _ => {
            let mut d = vec![
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ];
            d.extend_from_slice(
                ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref(),
            );
            d
        }
    };
    let signature = key
        .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info)
        .unwrap();
    m["SignatureVersion"] = version.into();
    m["Signature"] = base64::engine::general_purpose::STANDARD
        .encode(signature)
        .into();
    m
}

async fn ses_notifications_are_taken_only_from_named_topics_with_snss_signature(
    app: TestApp,
    smtp: SmtpServer,
    sns: SnsHost,
) {
    let (admin, ada, message_id) = ada_welcomed(&app, &smtp).await;
    // SES names the email by the id its SMTP answer gave ("Ok <id>").
    let queued_as = smtp.last_to("ada@example.com").unwrap().queued_as;
    let hook = app.url("/api/v1/feedback/ses");
    let post = |m: &serde_json::Value| {
        app.client
            .post(&hook)
            .header("content-type", "text/plain; charset=UTF-8")
            .header("x-amz-sns-message-type", m["Type"].as_str().unwrap_or(""))
            .body(m.to_string())
            .send()
    };
    let cert = format!("{}/SimpleNotificationService-test.pem", sns.origin);
    let confirmation = sns_signed(
        serde_json::json!({
            "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a",
            "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe to the topic. To confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": format!("{}/?Action=ConfirmSubscription&Token=2336412f", sns.origin),
            "Timestamp": "2026-12-07T20:31:17.000Z", "SigningCertURL": cert,
        }),
        "1",
    );
    assert_eq!(
        post(&confirmation).await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "off until an admin names the topics"
    );
    let page = "/admin/deliverability";
    let action = "/admin/deliverability/providers/ses";
    let r = app
        .submit_with(
            &admin,
            page,
            action,
            &[("public_key", "ses-feedback"), ("action", "make")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        text_of(&html, "#key-ses-error")
            .unwrap()
            .contains("not an SNS topic ARN"),
        "{html}"
    );
    let r = app
        .submit_with(
            &admin,
            page,
            action,
            &[("public_key", TOPIC), ("action", "make")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // The subscription is confirmed by visiting its URL, once (version 1, SHA-1).
    let visit = "/?Action=ConfirmSubscription&Token=2336412f";
    for _ in 0..2 {
        let r = post(&confirmation).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(sns.asked(visit), 1, "visited once: {:?}", sns.asked);
    // A hard bounce of Ada's email (version 2, SHA-256).
    let ses = serde_json::json!({
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "0102017c-fb1",
            "bouncedRecipients": [{"emailAddress": "ada@example.com", "action": "failed", "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2026-12-07T20:40:00.000Z"},
        "mail": {"messageId": queued_as, "source": "news@herald.test", "destination": ["ada@example.com"],
            "headers": [{"name": "Message-ID", "value": message_id}]}
    });
    let notification = |topic: &str, cert: &str| {
        sns_signed(
            serde_json::json!({
                "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                "TopicArn": topic, "Message": ses.to_string(),
                "Timestamp": "2026-12-07T20:40:01.000Z", "SigningCertURL": cert,
                "UnsubscribeURL": format!("{}/?Action=Unsubscribe", sns.origin),
            }),
            "2",
        )
    };
    let good = notification(TOPIC, &cert);
    let mut unsigned = good.clone();
    unsigned["Signature"] = "".into();
    let mut altered = good.clone();
    altered["Message"] = ses.to_string().replace("Permanent", "Transient").into();
    let elsewhere = notification(
        TOPIC,
        "https://certs.example.org/SimpleNotificationService-x.pem",
    );
    let other_topic = notification("arn:aws:sns:eu-west-1:999999999999:someone-else", &cert);
    for (refused, why) in [
        (&unsigned, "no signature"),
        (&altered, "a signature of another message"),
        (&elsewhere, "a certificate off SNS's hosts"),
        (&other_topic, "a topic the admin did not name"),
    ] {
        let r = post(refused).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why}");
    }
    assert_eq!(reports(&app).await, 0);
    let r = post(&good).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken, serde_json::json!({"recorded": 1, "matched": 1}));
    assert_eq!(matched_by(&app).await, "provider_id");
    let s = suppressions::find(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.reason, Reason::HardBounce);
    assert!(s.detail.contains("Amazon SES Permanent General"), "{s:?}");
    let fired = app.events().await;
    let fired = fired.iter().find(|e| e.0 == "response_received").unwrap();
    assert_eq!(
        (fired.1, fired.3["source"].as_str()),
        (Some(ada), Some("ses"))
    );
    // SNS sends it again: nothing new. The certificate was fetched once.
    let r = post(&good).await.unwrap();
    let taken: serde_json::Value = r.json().await.unwrap();
    assert_eq!(taken["recorded"], 0);
    assert_eq!(sns.asked("/SimpleNotificationService-test.pem"), 1);
    let (_, html) = app.page_with(&admin, page).await;
    let providers = text_of(&html, "#providers").unwrap();
    assert!(providers.contains(TOPIC), "{providers}");
    assert!(providers.contains("its credentials checked"), "{providers}");
    let (_, settings) = app.page_with(&admin, "/admin/settings").await;
    assert!(
        text_of(&settings, "#providers-on")
            .unwrap()
            .contains("on: Amazon SES"),
        "Settings names the providers that are on"
    );
    // The notifications' ids are kept as long as the reports, then forgotten.
    app.advance(std::time::Duration::from_secs(400 * 86_400));
    herald::retention::prune(&app.state.db, app.now_ms())
        .await
        .unwrap();
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM provider_notices")
        .fetch_one(app.state.db.read())
        .await
        .unwrap();
    assert_eq!(kept, 0);
}

mod ses_notifications_are_taken_only_from_named_topics_with_snss_signature {
    async fn run(engine: crate::helpers::Engine) {
        let smtp = crate::smtp::SmtpServer::start().await;
        let sns = super::SnsHost::start().await;
        let (url, origin) = (smtp.url(), sns.origin.clone());
        crate::helpers::TestApp::on(engine)
            .configure(move |c| {
                c.smtp_url = Some(herald::config::Secret::from(url));
                c.sns_test_origin = Some(origin.parse().unwrap());
            })
            .run(|app| {
                super::ses_notifications_are_taken_only_from_named_topics_with_snss_signature(
                    app, smtp, sns,
                )
            })
            .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(crate::helpers::Engine::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(crate::helpers::Engine::Postgres).await
    }
}
