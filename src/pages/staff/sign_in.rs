//! System users' sign-in and sign-out, and the forced and voluntary password
//! change (whose check the preference center shares).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Action, Actor};
use crate::auth::password::{
    MIN_PASSWORD_CHARS, PasswordHasher, Plaintext, Priority, SIGN_IN_FAILED, check_new_password,
    verify_sign_in,
};
use crate::auth::{throttle, users};
use crate::events::catalogue::{EventType, NewEvent};
use crate::state::AppState;
use crate::web::middleware::MUST_CHANGE_KEY;
use crate::web::session_store::{USER_ID_KEY, end_sessions_of};
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, client_ip, csrf, flash, local_path, redirect,
    render,
};

pub(super) const STAFF: &str = "staff";

pub fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login));
}

pub fn staff_routes(cfg: &mut web::ServiceConfig) {
    super::account::routes(cfg);
    cfg.route("/logout", web::post().to(logout))
        .route("/password", web::get().to(password_page))
        .route("/password", web::post().to(change_password));
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    ctx: PageContext,
    email: String,
    next: String,
    error: Option<&'static str>,
    signed_out: bool,
}

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    next: String,
    #[serde(default)]
    signed_out: Option<String>,
}

async fn login_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    query: web::Query<LoginQuery>,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if session.get::<i64>(USER_ID_KEY).ok().flatten().is_some() {
        return Ok(redirect("/dashboard"));
    }
    render(
        StatusCode::OK,
        &LoginPage {
            ctx,
            email: String::new(),
            next: local_path(&query.next, &state.config.base_url).unwrap_or_default(),
            error: None,
            signed_out: query.signed_out.is_some(),
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let ip = client_ip(&req, &state.config.trusted_proxies);
    let account: String = form.email.trim().to_lowercase().chars().take(254).collect();
    throttle::wait_turn(&state.db, state.clock.now_ms(), &account, &ip).await?;
    let now = state.clock.now_ms();
    let password = Plaintext::new(form.password);
    let user = users::find_by_email(&state.db, &account).await?;
    let stored = user
        .as_ref()
        .filter(|u| !u.disabled)
        .map(|u| (u.password_hash.as_deref(), u.usable_temp_hash(now)));
    let (verified, with_temp) = verify_sign_in(&state.hasher, &password, stored).await;
    let user = match user {
        Some(u)
            if verified
                && (!with_temp || users::use_temp_password(&state.db, u.id, now).await?) =>
        {
            u
        }
        _ => {
            // The attempt is stored as a failure already (`throttle::wait_turn`).
            audit::record_now(
                &state.db,
                now,
                audit::Entry {
                    actor: &Actor::named(account.clone()),
                    action: Action::SignInFailed,
                    target: "",
                    detail: "",
                    ip: &ip,
                },
            )
            .await?;
            return render(
                StatusCode::UNAUTHORIZED,
                &LoginPage {
                    ctx,
                    email: form.email,
                    next: local_path(&form.next, &state.config.base_url).unwrap_or_default(),
                    error: Some(SIGN_IN_FAILED),
                    signed_out: false,
                },
            );
        }
    };
    throttle::clear_account(&state.db, &account).await?;
    if with_temp {
        // The temporary password is used: end every other session of this user.
        end_sessions_of(&state.db, STAFF, user.id).await?;
    }
    let mut tx = state.db.begin().await?;
    audit::record(
        &mut tx,
        now,
        audit::Entry {
            actor: &Actor::user(user.id, &user.email),
            action: Action::SignInSucceeded,
            target: "",
            detail: if with_temp { "temporary password" } else { "" },
            ip: &ip,
        },
    )
    .await?;
    let event = NewEvent {
        kind: EventType::LoggedOnToSystem,
        contact_id: None,
        system_user_id: Some(user.id),
        group_id: None,
        params: serde_json::json!({}),
    };
    crate::intake::events::record(&mut tx, now, &event).await?;
    state.db.commit(tx).await?;
    // A new session id at sign-in, with nothing carried over from before.
    session.clear();
    session.renew();
    session
        .insert(USER_ID_KEY, user.id)
        .map_err(|e| anyhow::anyhow!("session: {e}"))?;
    csrf::rotate(&session);
    if with_temp {
        session
            .insert(MUST_CHANGE_KEY, true)
            .map_err(|e| anyhow::anyhow!("session: {e}"))?;
        return Ok(redirect("/password"));
    }
    let next = local_path(&form.next, &state.config.base_url);
    Ok(redirect(next.as_deref().unwrap_or("/dashboard")))
}

async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(&req, &state.config.trusted_proxies);
    audit::record_now(
        &state.db,
        state.clock.now_ms(),
        audit::Entry {
            actor: &Actor::user(user.id, &user.email),
            action: Action::SignedOut,
            target: "",
            detail: "",
            ip: &ip,
        },
    )
    .await?;
    session.purge();
    Ok(redirect("/login?signed_out=1"))
}

#[derive(Template)]
#[template(path = "auth/password.html")]
struct PasswordPage {
    ctx: PageContext,
    forced: bool,
    errors: crate::web::form::FieldErrors,
}

impl PasswordPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

fn is_forced(session: &Session) -> bool {
    session
        .get::<bool>(MUST_CHANGE_KEY)
        .ok()
        .flatten()
        .unwrap_or(false)
}

async fn password_page(ctx: PageContext, session: Session) -> Result<HttpResponse, AppError> {
    render(
        StatusCode::OK,
        &PasswordPage {
            ctx,
            forced: is_forced(&session),
            errors: Default::default(),
        },
    )
}

/// The change-password form of staff and contacts.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub confirm_password: String,
}

/// Checks a password change for staff and contacts alike: the current password
/// (unless `forced` after a temporary sign-in), the policy, the confirmation, and —
/// when forced — that the new one is not the temporary one (`not_temporary` says
/// so in the page's words). Returns the messages per field.
#[allow(clippy::too_many_arguments)]
pub async fn check_password_change(
    hasher: &PasswordHasher,
    form: &PasswordForm,
    min_chars: usize,
    forced: bool,
    email: &str,
    password_hash: Option<&str>,
    temp_hash: Option<&str>,
    not_temporary: &str,
) -> crate::web::form::FieldErrors {
    let mut errors = crate::web::form::FieldErrors::new();
    let current = Plaintext::new(form.current_password.clone());
    if !forced
        && !hasher
            .verify(&current, password_hash, Priority::Interactive)
            .await
    {
        errors.insert(
            "current_password",
            "This is not your current password.".into(),
        );
    }
    let new = Plaintext::new(form.new_password.clone());
    if let Err(e) = check_new_password(new.expose(), email, min_chars) {
        errors.insert("new_password", e);
    } else if form.confirm_password != form.new_password {
        errors.insert(
            "confirm_password",
            "The two passwords are not the same.".into(),
        );
    } else if forced && hasher.verify(&new, temp_hash, Priority::Interactive).await {
        errors.insert("new_password", not_temporary.into());
    }
    errors
}

async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    user: CurrentUser,
    session: Session,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let forced = is_forced(&session);
    let stored = users::find(&state.db, user.id)
        .await?
        .ok_or(AppError::Forbidden)?;
    let new = Plaintext::new(form.new_password.clone());
    let errors = check_password_change(
        &state.hasher,
        &form,
        MIN_PASSWORD_CHARS,
        forced,
        &stored.email,
        stored.password_hash.as_deref(),
        stored.temp_hash.as_deref(),
        "Choose a password of your own, not the temporary one.",
    )
    .await;
    if !errors.is_empty() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PasswordPage {
                ctx,
                forced,
                errors,
            },
        );
    }
    let hash = state.hasher.hash(&new, Priority::Interactive).await?;
    let now = state.clock.now_ms();
    let ip = client_ip(&req, &state.config.trusted_proxies);
    let mut tx = state.db.begin().await?;
    users::set_password(&mut tx, user.id, &hash, now).await?;
    audit::record(
        &mut tx,
        now,
        audit::Entry {
            actor: &Actor::user(user.id, &user.email),
            action: Action::PasswordChanged,
            target: &user.email,
            detail: if forced {
                "replaced temporary password"
            } else {
                ""
            },
            ip: &ip,
        },
    )
    .await?;
    tx.commit().await?;
    // Every other session of this user ends; this one continues under a new id.
    end_sessions_of(&state.db, STAFF, user.id).await?;
    session.remove(MUST_CHANGE_KEY);
    session.renew();
    csrf::rotate(&session);
    flash(
        &session,
        FlashKind::Success,
        "Your password has been changed.",
    );
    Ok(redirect("/dashboard"))
}
