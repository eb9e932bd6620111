//! The Messages pages: the list (used by how many automations), write and edit with
//! the template checked on save, copy, delete (refused while active automations
//! use the message); the preview and the test send are in `preview`.

use crate::web::Step;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Action;
use crate::jobs::registry::Registry;
use crate::messages::store::{self, Message, MessageInput};
use crate::messages::template::{self};
use crate::settings::Settings;
use crate::state::AppState;
use crate::web::form::{FieldErrors, Fields, FormPage, form_status};
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect,
    render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Before /messages/{id}: "system" is not an id.
    cfg.configure(super::system::routes)
        .route("/messages", web::get().to(list))
        .route("/messages", web::post().to(create))
        .route("/messages/new", web::get().to(new_page))
        .route("/messages/{id}", web::get().to(edit_page))
        .route("/messages/{id}", web::post().to(update))
        .route("/messages/{id}/copy", web::post().to(copy))
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
    if m.track == 0 {
        f.set("untracked", "on");
    }
    f
}

pub(super) async fn load(state: &AppState, id: i64) -> Result<Message, AppError> {
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
            track: f.get("untracked").is_empty(),
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

pub(super) fn req_session(req: &HttpRequest) -> Session {
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
        track: m.track != 0,
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
