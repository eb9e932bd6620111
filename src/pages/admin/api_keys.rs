//! The admin page "API keys": create one (shown once), list them with their last
//! use, revoke one. Every change is audited.

use crate::web::Step;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::api::keys::{self, ApiKey};
use crate::audit::Action;
use crate::state::AppState;
use crate::web::form::FieldErrors;
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect,
    render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::get().to(list))
        .route("/api-keys", web::post().to(create))
        .route("/api-keys/{id}/revoke", web::get().to(confirm_revoke))
        .route("/api-keys/{id}/revoke", web::post().to(revoke));
}

#[derive(Template)]
#[template(path = "api/keys.html")]
struct KeysPage {
    ctx: PageContext,
    keys: Vec<ApiKey>,
    name: String,
    errors: FieldErrors,
    /// The key just created, shown this once.
    created: Option<String>,
}

impl KeysPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

async fn page(
    state: &AppState,
    ctx: PageContext,
    status: StatusCode,
    name: String,
    errors: FieldErrors,
    created: Option<String>,
) -> Result<HttpResponse, AppError> {
    let keys = keys::list(&state.db).await?;
    render(
        status,
        &KeysPage {
            ctx,
            keys,
            name,
            errors,
            created,
        },
    )
}

async fn list(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    page(
        &state,
        ctx,
        StatusCode::OK,
        String::new(),
        FieldErrors::new(),
        None,
    )
    .await
}

#[derive(Deserialize)]
struct NewKey {
    #[serde(default)]
    name: String,
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    form: web::Form<NewKey>,
) -> Result<HttpResponse, AppError> {
    let name = form.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 || name.contains(['\r', '\n']) {
        let errors = FieldErrors::from([(
            "name",
            "Name the key (one line, at most 100 characters), e.g. after the system that uses it."
                .to_string(),
        )]);
        return page(
            &state,
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.name.clone(),
            errors,
            None,
        )
        .await;
    }
    let mut created = None;
    audited_change(
        &state,
        &req,
        &me,
        Action::ApiKeyCreated,
        &name,
        "",
        async |tx, now| {
            let (_, key) = keys::create(tx, &name, me.id, now).await?;
            created = Some(key);
            Ok(())
        },
    )
    .await?;
    // Shown on this answer only (no redirect: a reload must not show it again).
    let key = created.map(|k| k.expose().to_string());
    page(
        &state,
        ctx,
        StatusCode::OK,
        String::new(),
        FieldErrors::new(),
        key,
    )
    .await
}

async fn load(state: &AppState, id: i64) -> Result<ApiKey, AppError> {
    keys::find(&state.db, id)
        .await
        .step("loading the API key")?
        .ok_or(AppError::NotFound)
}

async fn confirm_revoke(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let key = load(&state, *id).await?;
    ConfirmPage {
        ctx,
        title: format!("Revoke the API key {}?", key.name),
        message: format!(
            "Calls with the key {}… are refused from now on. This cannot be undone.",
            key.prefix
        ),
        action: format!("/admin/api-keys/{}/revoke", key.id),
        button: "Revoke key",
        cancel: "/admin/api-keys".into(),
    }
    .render()
}

async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let key = load(&state, *id).await?;
    audited_change(
        &state,
        &req,
        &me,
        Action::ApiKeyRevoked,
        &key.name,
        &key.prefix,
        async |tx, now| keys::revoke(tx, key.id, now).await,
    )
    .await?;
    use actix_session::SessionExt;
    flash(
        &req.get_session(),
        FlashKind::Success,
        format!("Revoked the key {}.", key.name),
    );
    Ok(redirect("/admin/api-keys"))
}
