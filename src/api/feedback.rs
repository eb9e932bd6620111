//! `POST /api/v1/feedback/{provider}`: bounces and complaints from a sending
//! provider's webhook. Not behind an API key: the provider proves itself — Postmark
//! with the credentials an admin made for it, SendGrid and Mailgun with their
//! signatures under the keys an admin gave, Amazon SES with SNS's signature on a
//! message from a topic the admin named (Admin → Deliverability) — before
//! anything is recorded; a wrong or missing proof is 401 and nothing is recorded.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::api::problem::Problem;
use crate::feedback::providers::{self, Provider};
use crate::state::AppState;

/// What Herald did with a notification.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct FeedbackTaken {
    /// Bounces and complaints recorded (0 for a replay, or a record Herald does
    /// not act on, such as an auto-responder).
    pub recorded: usize,
    /// Of them, those that found the email they are about.
    pub matched: usize,
}

/// The password of a `Basic` authorization header.
fn basic_password(req: &HttpRequest) -> Option<String> {
    use base64::Engine;
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_string())
}

fn refused() -> HttpResponse {
    let mut r = HttpResponse::from_error(actix_web::Error::from(Problem::new(
        StatusCode::UNAUTHORIZED,
        "Not signed",
        "The webhook's credentials are missing or wrong: copy the address from Admin → Deliverability again.",
    )));
    r.headers_mut().insert(
        actix_web::http::header::WWW_AUTHENTICATE,
        actix_web::http::header::HeaderValue::from_static("Basic realm=\"Herald feedback\""),
    );
    r
}

/// A body a provider proved it sent but Herald cannot read: kept (its first
/// 64 KiB) for an admin with the unmatched reports, counted, and answered 400.
async fn unreadable(state: &AppState, provider: Provider, body: &[u8], why: String) -> Problem {
    let sender = provider.webhook_name();
    let report = crate::feedback::store::NewReport {
        kind: "unreadable",
        delivery: None,
        address: "",
        status: "",
        diagnostic: &why,
        sender: &sender,
        raw: body,
    };
    let kept = async {
        let mut tx = state.db.begin().await?;
        crate::feedback::store::insert(&mut tx, state.clock.now_ms(), &report).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = kept {
        tracing::warn!(error = %e, "keeping an unreadable webhook body failed");
    }
    crate::metrics::mail_report("unreadable", false);
    Problem::new(StatusCode::BAD_REQUEST, "Not a webhook", why)
}

fn not_signed(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "Not signed", detail)
}

/// An SNS message for Amazon SES: proved (its topic named by the admin, SNS's
/// signature under the certificate of an SNS host of the topic's region), then a
/// subscription confirmed (once; `None`) or a notification's bounces and
/// complaints read.
async fn ses(
    state: &AppState,
    body: &[u8],
    now: i64,
) -> Result<Option<Vec<providers::ProviderNotice>>, Problem> {
    use crate::sns::CertificateError;
    use providers::ses;
    let off = Provider::Ses;
    let Some(topics) = providers::topics(&state.db).await? else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "No such webhook",
            "Herald takes no webhook from Amazon SES: name its SNS topics in Admin → Deliverability.",
        ));
    };
    let message: ses::Envelope = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "Not a webhook",
            format!("not an Amazon SNS message: {e}"),
        )
    })?;
    let region = ses::region_of(&message.topic_arn).unwrap_or("");
    if !topics.contains(&message.topic_arn) || region.is_empty() {
        providers::called(&state.db, off, false, now).await?;
        return Err(not_signed(format!(
            "The message is from the SNS topic {}, which is not one of the topics in Admin → Deliverability.",
            message.topic_arn
        )));
    }
    let unreachable = |why: String| {
        tracing::warn!(error = %why, "Amazon SNS could not be reached");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            format!("Amazon SNS could not be reached: {why}"),
        )
    };
    let signed = match state.sns.key(&message.signing_cert_url, region, now).await {
        Ok(key) => message.signed_by(&key),
        Err(CertificateError::Unreachable(why)) => return Err(unreachable(why)),
        Err(CertificateError::Refused(why)) => {
            providers::called(&state.db, off, false, now).await?;
            return Err(not_signed(format!("The message is refused: {why}.")));
        }
    };
    providers::called(&state.db, off, signed, now).await?;
    if !signed {
        return Err(not_signed(
            "SNS's signature is missing or does not check with its signing certificate.",
        ));
    }
    match message.kind.as_str() {
        "SubscriptionConfirmation" => {
            // Visited once: a confirmation sent again changes nothing. (Not in a
            // transaction: the visit may take seconds, and SQLite has one writer.)
            let id = format!("subscribe:{}", message.message_id);
            if !providers::seen(&state.db, off, &id).await? {
                let url = message.subscribe_url.as_deref().unwrap_or("");
                match state.sns.confirm(url, region).await {
                    Ok(()) => {
                        tracing::info!(topic = %message.topic_arn, "Amazon SNS subscription confirmed")
                    }
                    Err(CertificateError::Unreachable(why)) => return Err(unreachable(why)),
                    Err(CertificateError::Refused(why)) => {
                        return Err(not_signed(format!("The subscription is refused: {why}.")));
                    }
                }
                let mut tx = state.db.begin().await?;
                providers::first_time(&mut tx, off, &id, now).await?;
                state.db.commit(tx).await?;
            }
            Ok(None)
        }
        "Notification" => match ses::read(&message.message, &message.message_id) {
            Ok(notices) => Ok(Some(notices)),
            Err(why) => Err(unreadable(state, off, body, why).await),
        },
        _ => Ok(None),
    }
}

/// A provider's bounce or complaint.
#[utoipa::path(
    post,
    path = "/api/v1/feedback/{provider}",
    tag = "feedback",
    params(("provider" = String, Path, description = "The sending provider: ses (Amazon SES through SNS), postmark, sendgrid or mailgun")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "The provider's webhook body, as it sends it"),
    responses(
        (status = 200, description = "Taken (a replay changes nothing)", body = FeedbackTaken),
        (status = 400, description = "Not a webhook of this provider", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong credentials (Postmark), or signature (SendGrid, Mailgun, SNS), or an SNS topic not named", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown provider, or not turned on", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Try again", body = Problem, content_type = "application/problem+json"),
    ),
    security(("provider_basic" = []))
)]
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let off = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "No such webhook",
            "Herald takes no webhook from this provider: turn it on in Admin → Deliverability.",
        )
    };
    let provider = Provider::from_code(&provider).ok_or_else(off)?;
    let now = state.clock.now_ms();
    let bad = |e: String| Problem::new(StatusCode::BAD_REQUEST, "Not a webhook", e);
    let notices = match provider {
        Provider::Postmark => {
            let password = basic_password(&req).unwrap_or_default();
            match providers::check(&state.db, provider, &password, now).await? {
                None => return Err(off()),
                Some(false) => return Ok(refused()),
                Some(true) => {}
            }
            match providers::postmark::read(&body) {
                Ok(notice) => notice.into_iter().collect::<Vec<_>>(),
                Err(why) => return Err(unreadable(&state, provider, &body, why).await),
            }
        }
        Provider::SendGrid => {
            let Some(key) = providers::public_key(&state.db, provider).await? else {
                return Err(off());
            };
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            let signature = header("x-twilio-email-event-webhook-signature");
            let timestamp = header("x-twilio-email-event-webhook-timestamp");
            let ok = !signature.is_empty()
                && !timestamp.is_empty()
                && providers::sendgrid::signed(&key, &timestamp, &body, &signature);
            providers::called(&state.db, provider, ok, now).await?;
            if !ok {
                return Err(not_signed(
                    "The Event Webhook's signature is missing or does not check with the verification key in Admin → Deliverability.",
                ));
            }
            match providers::sendgrid::read(&body) {
                Ok(notices) => notices,
                Err(why) => return Err(unreadable(&state, provider, &body, why).await),
            }
        }
        Provider::Ses => match ses(&state, &body, now).await? {
            Some(notices) => notices,
            None => return Ok(HttpResponse::Ok().json(FeedbackTaken::default())),
        },
        Provider::Mailgun => {
            let Some(sealed) = providers::sealed_secret(&state.db, provider).await? else {
                return Err(off());
            };
            // A key sealed under another secret key opens as nothing: no signature checks.
            let key = state
                .sealer
                .open(providers::MAILGUN_SEALED_FOR, &sealed)
                .unwrap_or_default();
            let read = providers::mailgun::read(&body, &key);
            providers::called(&state.db, provider, matches!(read, Ok(Some(_))), now).await?;
            match read.map_err(bad)? {
                Some(notices) => notices,
                None => {
                    return Err(not_signed(
                        "The webhook's signature does not check with the signing key in Admin → Deliverability.",
                    ));
                }
            }
        }
    };
    let settings = state.settings.load(&state.db).await?;
    let taken =
        crate::feedback::take::take_provider(&state.db, &settings, now, provider, &notices).await?;
    Ok(HttpResponse::Ok().json(FeedbackTaken {
        recorded: taken.reports,
        matched: taken.matched,
    }))
}
