//! A message previewed for a chosen contact, and sent as a test to the staff
//! member's own addresses.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::mail::Email;
use crate::messages::compose::{self, Unsubscribe};
use crate::messages::store::Message;
use crate::messages::template::{self, ContactValues, Personal};
use crate::settings::Settings;
use crate::state::AppState;
use crate::web::Step;
use crate::web::{AppError, CurrentUser, FlashKind, PageContext, flash, redirect, render};

use super::editor::{load, req_session};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/messages/{id}/preview", web::get().to(preview))
        .route("/messages/{id}/test", web::post().to(send_test));
}

#[derive(Deserialize)]
struct PreviewQuery {
    #[serde(default)]
    contact: String,
    /// The suggestion picked in the contact field, if any.
    #[serde(default)]
    contact_id: String,
    /// Send test: the addresses it goes to.
    #[serde(default)]
    to: String,
}

impl PreviewQuery {
    /// The preview of `m` for the same contact.
    fn back(&self, m: &Message) -> String {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("contact", &self.contact)
            .append_pair("contact_id", &self.contact_id)
            .finish();
        format!("/messages/{}/preview?{query}", m.id)
    }
}

#[derive(Template)]
#[template(path = "messages/preview.html")]
struct PreviewPage {
    ctx: PageContext,
    m: Message,
    contact: String,
    contact_id: String,
    contact_error: Option<String>,
    shown_for: String,
    subject: String,
    text: String,
    /// The HTML part, sanitised; shown in a sandboxed frame, never in this page.
    html: String,
    error: Option<String>,
    /// Send test: the addresses offered (the last ones used, else one's own).
    test_to: String,
    test_error: Option<String>,
}

/// The values to preview with: the chosen contact, or a sample one.
async fn preview_values(
    state: &AppState,
    chosen: &PreviewQuery,
) -> Result<(Personal, String, Option<String>, Option<i64>), AppError> {
    let settings = Settings::load(&state.db).await?;
    let mut values = Personal {
        contact: ContactValues {
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            attributes: Default::default(),
        },
        event: serde_json::json!({}),
        preferences_url: compose::preferences_url(&settings, &state.config.base_url),
        unsubscribe_url: format!("{}u/…", state.config.base_url),
    };
    if chosen.contact.trim().is_empty() && chosen.contact_id.trim().is_empty() {
        return Ok((values, "a sample contact (Ada Lovelace)".into(), None, None));
    }
    match crate::contacts::search::pick(&state.db, &chosen.contact_id, &chosen.contact).await? {
        Ok(c) => {
            if let Some(v) = compose::contact_values(&state.db, c.id).await? {
                values.contact = v;
            }
            if let Some(unsubscribe) = Unsubscribe::of(&state.db, c.id, None).await? {
                values.unsubscribe_url = unsubscribe.link(&state.links, &state.config.base_url);
            }
            Ok((
                values,
                format!("{} ({})", c.name(), c.email),
                None,
                Some(c.id),
            ))
        }
        Err(message) => Ok((
            values,
            "a sample contact (Ada Lovelace)".into(),
            Some(message),
            None,
        )),
    }
}

async fn preview(
    state: web::Data<AppState>,
    ctx: PageContext,
    me: CurrentUser,
    id: web::Path<i64>,
    query: web::Query<PreviewQuery>,
) -> Result<HttpResponse, AppError> {
    let m = load(&state, *id).await?;
    let kept = crate::auth::users::test_addresses(&state.db, me.id).await?;
    let test_to = if kept.is_empty() {
        me.email
    } else {
        kept.join(", ")
    };
    preview_page(&state, ctx, m, &query, test_to, None).await
}

/// The preview of `m` for the contact `query` names, with Send test offering
/// `test_to` (and, after a refused test send, why).
async fn preview_page(
    state: &AppState,
    ctx: PageContext,
    m: Message,
    query: &PreviewQuery,
    test_to: String,
    test_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (values, shown_for, contact_error, _) = preview_values(state, query).await?;
    let rendered = {
        let (m, values) = (m.clone(), values.clone());
        template::off_async(move || compose::render(&m, &values)).await
    };
    let (subject, text, html, error) = match rendered {
        Ok((s, t, h)) => (s, t, ammonia::clean(&h), None),
        Err(e) => (
            String::new(),
            String::new(),
            String::new(),
            Some(e.to_string()),
        ),
    };
    let status = if test_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        status,
        &PreviewPage {
            ctx,
            m,
            contact: query.contact.clone(),
            contact_id: query.contact_id.clone(),
            contact_error,
            shown_for,
            subject,
            text,
            html,
            error,
            test_to,
            test_error,
        },
    )
}

/// Sends the message, as the chosen contact gets it, to up to five addresses (the
/// ones typed, remembered for the next test); then back to the same preview.
async fn send_test(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<PreviewQuery>,
) -> Result<HttpResponse, AppError> {
    let m = load(&state, *id).await?;
    let session = req_session(&req);
    let back = form.back(&m);
    let to = match crate::auth::users::parse_test_addresses(&form.to) {
        Ok(to) => to,
        Err(why) => {
            return preview_page(&state, ctx, m, &form, form.to.clone(), Some(why)).await;
        }
    };
    let mut tx = state.db.begin().await?;
    crate::auth::users::set_test_addresses(&mut tx, me.id, &to).await?;
    state.db.commit(tx).await?;
    let (values, _, _, _) = preview_values(&state, &form).await?;
    let settings = Settings::load(&state.db).await?;
    // Rendered once: every address gets the same message.
    let rendered = {
        let (m, first) = (m.clone(), to[0].to_string());
        template::off_async(move || compose::email(&m, &settings, &first, &values, None)).await
    };
    let test = match rendered {
        Ok(mut e) => {
            e.subject = format!("[Test] {}", e.subject);
            e
        }
        Err(e) => {
            flash(
                &session,
                FlashKind::Error,
                format!("The message cannot be rendered: {e}"),
            );
            return Ok(redirect(&back));
        }
    };
    let emails: Vec<Email> = to
        .iter()
        .map(|address| Email {
            to: address.to_string(),
            ..test.clone()
        })
        .collect();
    let (mut sent, mut refused, mut delivered) = (Vec::new(), Vec::new(), Vec::new());
    for email in &emails {
        match state.mailer.send(email).await {
            Ok(id) => {
                sent.push(email.to.as_str());
                delivered.push(
                    crate::deliveries::Sent::new(
                        crate::deliveries::Kind::Test,
                        id.message_id,
                        &email.to,
                    )
                    .queued_as(id.queued_as)
                    .of_message(m.id),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "test send failed");
                refused.push(email.to.as_str());
            }
        }
    }
    crate::deliveries::record(&state.db, state.clock.now_ms(), &delivered)
        .await
        .step("recording the test send")?;
    if !sent.is_empty() {
        flash(
            &session,
            FlashKind::Success,
            format!("A test was sent to {}.", sent.join(", ")),
        );
    }
    if !refused.is_empty() {
        flash(
            &session,
            FlashKind::Error,
            format!(
                "The mail server did not take the test for {}; try again in a moment.",
                refused.join(", ")
            ),
        );
    }
    // A test is sent all the same; the sender should know automations would not.
    for address in &sent {
        if let Some(s) = crate::suppressions::find(&state.db, address)
            .await
            .step("checking the suppression list")?
        {
            flash(
                &session,
                FlashKind::Info,
                format!(
                    "{address} is on the suppression list ({}): automations send it no prepared message.",
                    s.reason.label()
                ),
            );
        }
    }
    Ok(redirect(&back))
}
