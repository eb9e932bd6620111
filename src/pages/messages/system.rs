//! Messages → System emails: the emails Herald sends itself (passwords, the
//! double opt-in confirmation, the reminder before an automation ends), each
//! edited like a prepared message — placeholders, a check on save that names the
//! line, a preview with sample values — and restored to the shipped text.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::Action;
use crate::messages::system::{self, Entered, SystemEmail, Text};
use crate::state::AppState;
use crate::web::form::FieldErrors;
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect, render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/messages/system", web::get().to(list))
        .route("/messages/system/{kind}", web::get().to(edit_page))
        .route("/messages/system/{kind}", web::post().to(save))
        .route("/messages/system/{kind}/restore", web::post().to(restore));
}

#[derive(Template)]
#[template(path = "messages/system_list.html")]
struct ListPage {
    ctx: PageContext,
    emails: Vec<(SystemEmail, Text)>,
}

async fn list(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    let emails = system::all(&state.db).await?;
    render(StatusCode::OK, &ListPage { ctx, emails })
}

#[derive(Template)]
#[template(path = "messages/system_form.html")]
struct FormPage {
    ctx: PageContext,
    kind: SystemEmail,
    current: Text,
    form: Entered,
    errors: FieldErrors,
    /// The text as it is sent now, rendered with sample values (none when the
    /// entered text does not render).
    preview: Option<system::Rendered>,
}

impl FormPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
    /// `{{ name }}`, as a placeholder is written.
    fn braces(&self, name: &str) -> String {
        format!("{{{{ {name} }}}}")
    }
}

fn kind_of(code: &str) -> Result<SystemEmail, AppError> {
    SystemEmail::from_code(code).ok_or(AppError::NotFound)
}

/// The HTML part of a preview is shown in a sandboxed frame, cleaned.
fn previewed(text: &Text, kind: SystemEmail) -> Option<system::Rendered> {
    system::render(text, &system::sample(kind))
        .ok()
        .map(|mut r| {
            r.html = ammonia::clean(&r.html);
            r
        })
}

async fn edit_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    kind: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let kind = kind_of(&kind)?;
    let current = system::current(&state.db, kind).await?;
    let form = Entered {
        subject: current.subject.clone(),
        text: current.text.clone(),
        html: current.html.clone(),
    };
    let preview = previewed(&current, kind);
    render(
        StatusCode::OK,
        &FormPage {
            ctx,
            kind,
            current,
            form,
            errors: FieldErrors::new(),
            preview,
        },
    )
}

async fn save(
    state: web::Data<AppState>,
    ctx: PageContext,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    kind: web::Path<String>,
    form: web::Form<Entered>,
) -> Result<HttpResponse, AppError> {
    let kind = kind_of(&kind)?;
    let entered = form.into_inner();
    let (subject, text, html) = (
        entered.subject.clone(),
        entered.text.clone(),
        entered.html.clone(),
    );
    let checked =
        crate::messages::template::off_async(move || system::check(kind, &subject, &text, &html))
            .await;
    if let Err(errors) = checked {
        let current = system::current(&state.db, kind).await?;
        let preview = previewed(&current, kind);
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &FormPage {
                ctx,
                kind,
                current,
                form: entered,
                errors,
                preview,
            },
        );
    }
    store(&state, &req, &me, kind, &entered, false).await?;
    flash(
        &session,
        FlashKind::Success,
        format!("{} saved: it is sent like this from now on.", kind.label()),
    );
    Ok(redirect(&format!("/messages/system/{}", kind.code())))
}

async fn restore(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    kind: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let kind = kind_of(&kind)?;
    let shipped = kind.shipped();
    let entered = Entered {
        subject: shipped.subject,
        text: shipped.text,
        html: shipped.html,
    };
    store(&state, &req, &me, kind, &entered, true).await?;
    flash(
        &session,
        FlashKind::Success,
        format!("{}: Herald's own text is back.", kind.label()),
    );
    Ok(redirect(&format!("/messages/system/{}", kind.code())))
}

/// Saves a version, audited.
async fn store(
    state: &AppState,
    req: &HttpRequest,
    me: &CurrentUser,
    kind: SystemEmail,
    entered: &Entered,
    restored: bool,
) -> Result<(), AppError> {
    let by = me.email.clone();
    let detail = if restored {
        "restored the shipped text"
    } else {
        "saved"
    };
    audited_change(
        state,
        req,
        me,
        Action::MessageSaved,
        &format!("system email: {}", kind.label()),
        detail,
        async |tx, now| {
            system::save(tx, kind, entered, &by, restored, now)
                .await
                .map(|_| ())
        },
    )
    .await
}
