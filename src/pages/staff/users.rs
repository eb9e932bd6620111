//! Admin pages for system users: list, create, change role, disable and enable,
//! issue a new temporary password.

use crate::web::Step;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::sign_in::STAFF;
use crate::accounts::{NewUser, create_user, temporary_password};
use crate::audit::{Action, Actor};
use crate::auth::password::Plaintext;
use crate::auth::users::{self, CreateError, Role, SystemUser};
use crate::state::AppState;
use crate::types::{EmailAddress, PersonName};
use crate::web::form::FieldErrors;
use crate::web::session_store::end_sessions_of;
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, audited_change, client_ip, flash, redirect,
    render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users", web::post().to(create))
        .route("/users/new", web::get().to(new_form))
        .route("/users/{id}", web::get().to(show))
        .route("/users/{id}/role", web::post().to(change_role))
        .route("/users/{id}/disable", web::post().to(disable))
        .route("/users/{id}/enable", web::post().to(enable))
        .route(
            "/users/{id}/temporary-password",
            web::post().to(reset_password),
        );
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    ctx: PageContext,
    users: Vec<SystemUser>,
}

async fn list(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    let users = users::list(&state.db).await?;
    render(StatusCode::OK, &ListPage { ctx, users })
}

#[derive(Debug, Default, Deserialize)]
struct UserForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

impl UserForm {
    fn parse(&self) -> Result<NewUser, FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = EmailAddress::parse(&self.email)
            .map_err(|e| errors.insert("email", e.0))
            .ok();
        let name = PersonName::parse(&self.name)
            .map_err(|e| errors.insert("name", e.0))
            .ok();
        let role = Role::parse(&self.role)
            .map_err(|e| errors.insert("role", e.0))
            .ok();
        match (email, name, role) {
            (Some(email), Some(name), Some(role)) => Ok(NewUser { email, name, role }),
            _ => Err(errors),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewPage {
    ctx: PageContext,
    form: UserForm,
    errors: FieldErrors,
    roles: [Role; 2],
}

impl NewPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

async fn new_form(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(
        StatusCode::OK,
        &NewPage {
            ctx,
            form: UserForm {
                role: "marketer".into(),
                ..Default::default()
            },
            errors: FieldErrors::new(),
            roles: Role::ALL,
        },
    )
}

/// Shows a freshly issued temporary password, once. It is rendered in the answer
/// to the POST (not stored for a redirect), so it exists nowhere else.
#[derive(Template)]
#[template(path = "admin/user_password.html")]
struct PasswordShownPage {
    ctx: PageContext,
    user_id: i64,
    email: String,
    password: Plaintext,
    created: bool,
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let invalid = |ctx, form, errors| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewPage {
                ctx,
                form,
                errors,
                roles: Role::ALL,
            },
        )
    };
    let new = match form.parse() {
        Ok(n) => n,
        Err(errors) => return invalid(ctx, form, errors),
    };
    let ip = client_ip(&req, &state.config.trusted_proxies);
    let actor = Actor::user(me.id, &me.email);
    match create_user(
        &state.db,
        &state.hasher,
        state.clock.now_ms(),
        &new,
        &actor,
        &ip,
    )
    .await
    {
        Ok((id, password)) => render(
            StatusCode::CREATED,
            &PasswordShownPage {
                ctx,
                user_id: id,
                email: new.email.to_string(),
                password,
                created: true,
            },
        ),
        Err(CreateError::Exists) => {
            let errors = FieldErrors::from([("email", CreateError::Exists.to_string())]);
            invalid(ctx, form, errors)
        }
        Err(e) => Err(AppError::Unexpected(e.into())),
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct ShowPage {
    ctx: PageContext,
    user: SystemUser,
    roles: [Role; 2],
    is_me: bool,
}

async fn load(state: &AppState, id: i64) -> Result<SystemUser, AppError> {
    users::find(&state.db, id)
        .await
        .step("loading the system user")?
        .ok_or(AppError::NotFound)
}

async fn show(
    state: web::Data<AppState>,
    ctx: PageContext,
    me: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let user = load(&state, *id).await?;
    render(
        StatusCode::OK,
        &ShowPage {
            ctx,
            is_me: user.id == me.id,
            user,
            roles: Role::ALL,
        },
    )
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

/// Admins cannot demote or disable themselves: there must always be one admin.
fn refuse_self(
    session: &Session,
    me: &CurrentUser,
    target: &SystemUser,
    what: &str,
) -> Option<HttpResponse> {
    (me.id == target.id).then(|| {
        flash(
            session,
            FlashKind::Error,
            format!("You cannot {what} your own account. Ask another admin."),
        );
        redirect(&format!("/admin/users/{}", target.id))
    })
}

async fn change_role(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let target = load(&state, *id).await?;
    let Ok(role) = Role::parse(&form.role) else {
        return Err(AppError::BadRequest("Choose Admin or Marketer.".into()));
    };
    if role != target.role {
        if let Some(refused) = refuse_self(&session, &me, &target, "change the role of") {
            return Ok(refused);
        }
        let detail = format!("{} → {}", target.role, role);
        audited_change(
            &state,
            &req,
            &me,
            Action::UserRoleChanged,
            &target.email,
            &detail,
            async |tx, now| users::set_role(tx, target.id, role, now).await,
        )
        .await?;
    }
    flash(
        &session,
        FlashKind::Success,
        format!("{} is now {}.", target.email, role.label()),
    );
    Ok(redirect(&format!("/admin/users/{}", target.id)))
}

async fn set_disabled(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: i64,
    disabled: bool,
) -> Result<HttpResponse, AppError> {
    let target = load(&state, id).await?;
    if disabled && let Some(refused) = refuse_self(&session, &me, &target, "disable") {
        return Ok(refused);
    }
    let action = if disabled {
        Action::UserDisabled
    } else {
        Action::UserEnabled
    };
    audited_change(
        &state,
        &req,
        &me,
        action,
        &target.email,
        "",
        async |tx, now| users::set_disabled(tx, target.id, disabled, now).await,
    )
    .await?;
    if disabled {
        let ended = end_sessions_of(&state.db, STAFF, target.id).await?;
        tracing::info!(
            user = target.id,
            sessions = ended,
            "user disabled, sessions ended"
        );
    }
    let text = if disabled {
        format!("{} is disabled and signed out everywhere.", target.email)
    } else {
        format!("{} can sign in again.", target.email)
    };
    flash(&session, FlashKind::Success, text);
    Ok(redirect(&format!("/admin/users/{}", target.id)))
}

async fn disable(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_disabled(state, req, me, session, *id, true).await
}

async fn enable(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_disabled(state, req, me, session, *id, false).await
}

/// Issues a new temporary password and shows it once. The user's own password
/// keeps working until the temporary one is used.
async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let target = load(&state, *id).await?;
    let now = state.clock.now_ms();
    let (password, hash, expires_at) = temporary_password(&state.db, &state.hasher, now).await?;
    audited_change(
        &state,
        &req,
        &me,
        Action::UserPasswordReset,
        &target.email,
        "",
        async |tx, now| users::set_temp_password(tx, target.id, &hash, expires_at, now).await,
    )
    .await?;
    render(
        StatusCode::OK,
        &PasswordShownPage {
            ctx,
            user_id: target.id,
            email: target.email,
            password,
            created: false,
        },
    )
}
