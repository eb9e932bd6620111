//! The Messages pages: the list (used by how many automations), write and edit with
//! the template checked on save, copy, delete (refused while active automations
//! use the message), preview for a chosen contact, and a test send to oneself.

use crate::web::Step;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Action;
use crate::jobs::registry::Registry;
use crate::mail::Email;
use crate::messages::compose::{self, Unsubscribe};
use crate::messages::store::{self, Message, MessageInput};
use crate::messages::template::{self, ContactValues, Personal};
use crate::settings::Settings;
use crate::state::AppState;
use crate::web::form::{FieldErrors, Fields, FormPage, form_status};
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect,
    render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/messages", web::get().to(list))
        .route("/messages", web::post().to(create))
        .route("/messages/new", web::get().to(new_page))
        .route("/messages/{id}", web::get().to(edit_page))
        .route("/messages/{id}", web::post().to(update))
        .route("/messages/{id}/copy", web::post().to(copy))
        .route("/messages/{id}/preview", web::get().to(preview))
        .route("/messages/{id}/test", web::post().to(send_test))
        .route("/messages/{id}/delete", web::get().to(confirm_delete))
        .route("/messages/{id}/delete", web::post().to(delete));
}

#[derive(Template)]
#[template(path = "messages/list.html")]
struct ListPage {
    ctx: PageContext,
    messages: Vec<(Message, i64)>,
}

async fn list(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    let senders = store::senders(&state.db, |k, v| jobs.message_of(k, v)).await?;
    let messages = store::list(&state.db)
        .await?
        .into_iter()
        .map(|m| {
            let n = senders.iter().filter(|(id, _, _)| *id == m.id).count() as i64;
            (m, n)
        })
        .collect();
    render(StatusCode::OK, &ListPage { ctx, messages })
}

#[derive(Template)]
#[template(path = "messages/form.html")]
struct FormView {
    ctx: PageContext,
    id: Option<i64>,
    f: Fields,
    errors: FieldErrors,
}

crate::form_page!(FormView);

impl FormView {
    fn action(&self) -> String {
        self.id
            .map_or_else(|| "/messages".to_string(), |id| format!("/messages/{id}"))
    }
}

fn form_view(
    ctx: PageContext,
    id: Option<i64>,
    f: Fields,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    render(form_status(&errors), &FormView { ctx, id, f, errors })
}

async fn new_page(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    let mut f = Fields::default();
    f.set("sender_name", Settings::load(&state.db).await?.sender_name);
    form_view(ctx, None, f, FieldErrors::new())
}

fn fields_of(m: &Message) -> Fields {
    let mut f = Fields::default();
    f.set("name", &m.name);
    f.set("subject", &m.subject);
    f.set("sender_name", &m.sender_name);
    f.set("text_body", &m.text_body);
    f.set("html_body", &m.html_body);
    f
}

async fn load(state: &AppState, id: i64) -> Result<Message, AppError> {
    store::find(&state.db, id)
        .await
        .step("loading the message")?
        .ok_or(AppError::NotFound)
}

async fn edit_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let m = load(&state, *id).await?;
    form_view(ctx, Some(m.id), fields_of(&m), FieldErrors::new())
}

/// One line of text of at most `max` characters.
fn line(
    f: &Fields,
    field: &'static str,
    what: &str,
    max: usize,
    errors: &mut FieldErrors,
) -> String {
    let v = f.get(field).trim();
    if v.is_empty() {
        errors.insert(field, format!("Enter the {what}."));
    } else if v.chars().count() > max || v.contains(['\r', '\n']) {
        errors.insert(
            field,
            format!("The {what} is one line of at most {max} characters."),
        );
    }
    v.to_string()
}

/// Checks the whole form at once: names, lengths, and each template with its line.
pub fn parse(f: &Fields) -> Result<MessageInput, FieldErrors> {
    let mut errors = FieldErrors::new();
    let name = line(f, "name", "name", 100, &mut errors);
    let subject = line(f, "subject", "subject", 200, &mut errors);
    let sender_name = line(f, "sender_name", "sender name", 100, &mut errors);
    let text_body = f.get("text_body").replace("\r\n", "\n");
    let html_body = f.get("html_body").replace("\r\n", "\n");
    if text_body.trim().is_empty() {
        errors.insert("text_body", "Write the text of the message.".into());
    }
    for (field, source, max) in [
        ("subject", subject.as_str(), 200),
        ("text_body", text_body.as_str(), 100_000),
        ("html_body", html_body.as_str(), 200_000),
    ] {
        if source.chars().count() > max {
            errors.insert(field, format!("At most {max} characters."));
        } else if let Err(e) = template::check(source) {
            errors.entry(field).or_insert_with(|| e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(MessageInput {
            name,
            subject,
            sender_name,
            text_body,
            html_body,
        })
    } else {
        Err(errors)
    }
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let f = Fields::from_pairs(form.into_inner());
    let (f, parsed) = template::off_async(move || {
        let parsed = parse(&f);
        (f, parsed)
    })
    .await;
    let input = match parsed {
        Ok(i) => i,
        Err(errors) => return form_view(ctx, None, f, errors),
    };
    let mut id = 0;
    audited_change(
        &state,
        &req,
        &me,
        Action::MessageSaved,
        &input.name,
        "created",
        async |tx, now| {
            id = store::create(tx, &input, now).await?;
            Ok(())
        },
    )
    .await?;
    flash(
        &req_session(&req),
        FlashKind::Success,
        format!("{} is saved.", input.name),
    );
    Ok(redirect(&format!("/messages/{id}")))
}

fn req_session(req: &HttpRequest) -> Session {
    use actix_session::SessionExt;
    req.get_session()
}

async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    id: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let m = load(&state, *id).await?;
    let f = Fields::from_pairs(form.into_inner());
    let (f, parsed) = template::off_async(move || {
        let parsed = parse(&f);
        (f, parsed)
    })
    .await;
    let input = match parsed {
        Ok(i) => i,
        Err(errors) => return form_view(ctx, Some(m.id), f, errors),
    };
    audited_change(
        &state,
        &req,
        &me,
        Action::MessageSaved,
        &input.name,
        "changed",
        async |tx, now| store::update(tx, m.id, &input, now).await,
    )
    .await?;
    flash(
        &req_session(&req),
        FlashKind::Success,
        format!("{} is saved.", input.name),
    );
    Ok(redirect(&format!("/messages/{}", m.id)))
}

async fn copy(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let m = load(&state, *id).await?;
    let input = MessageInput {
        name: format!("Copy of {}", m.name).chars().take(100).collect(),
        subject: m.subject,
        sender_name: m.sender_name,
        text_body: m.text_body,
        html_body: m.html_body,
    };
    let mut new_id = 0;
    audited_change(
        &state,
        &req,
        &me,
        Action::MessageSaved,
        &input.name,
        &format!("copy of {}", m.name),
        async |tx, now| {
            new_id = store::create(tx, &input, now).await?;
            Ok(())
        },
    )
    .await?;
    flash(
        &req_session(&req),
        FlashKind::Success,
        format!("Copied {}.", m.name),
    );
    Ok(redirect(&format!("/messages/{new_id}")))
}

/// The refusal when active automations use the message: said before any
/// confirmation is asked, and again should the delete be posted anyway.
/// `users` are the automations that use it (name, active).
fn refused_while_in_use(
    req: &HttpRequest,
    m: &store::Message,
    users: &[(String, bool)],
) -> Option<HttpResponse> {
    let active = names(users, true);
    if active.is_empty() {
        return None;
    }
    flash(
        &req_session(req),
        FlashKind::Error,
        format!(
            "{} is not deleted: active automations use it ({}). Deactivate them or choose another message first.",
            m.name,
            active.join(", ")
        ),
    );
    Some(redirect(&format!("/messages/{}", m.id)))
}

/// The names of `users` that are active (`true`) or not.
fn names(users: &[(String, bool)], active: bool) -> Vec<&str> {
    users
        .iter()
        .filter(|(_, a)| *a == active)
        .map(|(name, _)| name.as_str())
        .collect()
}

async fn confirm_delete(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    req: HttpRequest,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let m = load(&state, *id).await?;
    let users = store::users_of(&state.db, |k, v| jobs.message_of(k, v), m.id).await?;
    if let Some(refused) = refused_while_in_use(&req, &m, &users) {
        return Ok(refused);
    }
    let inactive = names(&users, false);
    ConfirmPage {
        ctx,
        title: format!("Delete the message {}?", m.name),
        message: if inactive.is_empty() {
            "No automation uses it. This cannot be undone.".into()
        } else {
            format!(
                "Inactive automations that use it ({}) will need another message. This cannot be undone.",
                inactive.join(", ")
            )
        },
        action: format!("/messages/{}/delete", m.id),
        button: "Delete message",
        cancel: format!("/messages/{}", m.id),
    }
    .render()
}

async fn delete(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    req: HttpRequest,
    me: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let m = load(&state, *id).await?;
    let session = req_session(&req);
    let users = store::users_of(&state.db, |k, v| jobs.message_of(k, v), m.id).await?;
    if let Some(refused) = refused_while_in_use(&req, &m, &users) {
        return Ok(refused);
    }
    audited_change(
        &state,
        &req,
        &me,
        Action::MessageDeleted,
        &m.name,
        "",
        async |tx, _| store::delete(tx, m.id).await,
    )
    .await?;
    flash(&session, FlashKind::Success, format!("Deleted {}.", m.name));
    Ok(redirect("/messages"))
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
    let (mut sent, mut refused) = (Vec::new(), Vec::new());
    for email in &emails {
        match state.mailer.send(email).await {
            Ok(_) => sent.push(email.to.as_str()),
            Err(e) => {
                tracing::warn!(error = %e, "test send failed");
                refused.push(email.to.as_str());
            }
        }
    }
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
    Ok(redirect(&back))
}
