//! System users: sign-in and sign-out, the forced and voluntary password change,
//! the admin pages for system users, throttling and password hashing.

mod account;
pub mod password;
mod staff_pages;
pub mod throttle;
pub mod users;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Action, Actor};
use crate::clock::Clock;
use crate::db::Db;
use crate::events;
use crate::events::catalogue::{EventType, NewEvent};
use crate::settings::Settings;
use crate::state::AppState;
use crate::types::{EmailAddress, PersonName};
use crate::web::middleware::MUST_CHANGE_KEY;
use crate::web::session_store::{USER_ID_KEY, end_sessions_of};
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, client_ip, csrf, flash, local_path, redirect,
    render,
};
pub use password::{PasswordHasher, Plaintext, Priority};
pub use staff_pages::routes as admin_routes;
use users::{CreateError, Role};

/// Length of generated temporary passwords (the default).
pub const TEMP_PASSWORD_LENGTH: usize = 16;
/// The shortest password a system user may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
const MAX_PASSWORD_CHARS: usize = 256;
const STAFF: &str = "staff";

pub fn public_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login));
}

pub fn staff_routes(cfg: &mut web::ServiceConfig) {
    account::routes(cfg);
    cfg.route("/logout", web::post().to(logout))
        .route("/password", web::get().to(password_page))
        .route("/password", web::post().to(change_password));
}

/// The admin created at the first start, with the temporary password to print once.
pub struct FirstAdmin {
    pub email: String,
    pub password: Plaintext,
}

/// A new system user as entered.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: EmailAddress,
    pub name: PersonName,
    pub role: Role,
}

/// Creates a system user with a fresh temporary password (returned once, to show
/// or print; only its hash is stored) and audits it, in one transaction.
pub async fn create_user(
    db: &Db,
    hasher: &PasswordHasher,
    now_ms: i64,
    new: &NewUser,
    actor: &Actor,
    ip: &str,
) -> Result<(i64, Plaintext), CreateError> {
    let (password, hash, expires_at) = temporary_password(db, hasher, now_ms).await?;
    let mut tx = db.begin().await?;
    let id = users::create(
        &mut tx, &new.email, &new.name, new.role, &hash, expires_at, now_ms,
    )
    .await?;
    audit::record(
        &mut tx,
        now_ms,
        audit::Entry {
            actor,
            action: Action::UserCreated,
            target: new.email.as_str(),
            detail: new.role.code(),
            ip,
        },
    )
    .await?;
    let event = NewEvent {
        kind: EventType::SystemUserCreated,
        contact_id: None,
        system_user_id: Some(id),
        group_id: None,
        params: serde_json::json!({ "role": new.role.code() }),
    };
    events::store::record(&mut tx, now_ms, &event).await?;
    db.commit(tx).await?;
    Ok((id, password))
}

/// A fresh temporary password, its hash and its expiry (lifetime from settings).
pub async fn temporary_password(
    db: &Db,
    hasher: &PasswordHasher,
    now_ms: i64,
) -> anyhow::Result<(Plaintext, String, i64)> {
    let hours = Settings::load(db).await?.temp_password_lifetime_hours;
    let password = password::generate(TEMP_PASSWORD_LENGTH);
    let hash = hasher.hash(&password, Priority::Interactive).await?;
    Ok((password, hash, now_ms + hours * 3_600_000))
}

/// On the first start (no system user at all) creates the admin `email`.
pub async fn bootstrap_first_admin(
    db: &Db,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    email: &str,
) -> anyhow::Result<Option<FirstAdmin>> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    let new = NewUser {
        email: EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("admin_email: {e}"))?,
        name: PersonName::parse("Administrator").expect("valid name"),
        role: Role::Admin,
    };
    match create_user(
        db,
        hasher,
        clock.now_ms(),
        &new,
        &Actor::named("system (first start)"),
        "",
    )
    .await
    {
        Ok((_, password)) => Ok(Some(FirstAdmin {
            email: new.email.to_string(),
            password,
        })),
        // Another instance created it at the same moment.
        Err(CreateError::Exists) => Ok(None),
        Err(e) => Err(e.into()),
    }
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

/// Temporary credential fields as stored for staff and contacts.
pub fn usable_temp(
    hash: Option<&str>,
    expires_at: Option<i64>,
    used_at: Option<i64>,
    now_ms: i64,
) -> Option<&str> {
    match (hash, expires_at, used_at) {
        (Some(h), Some(exp), None) if exp > now_ms => Some(h),
        _ => None,
    }
}

/// Verifies a sign-in against an account's permanent password and its usable
/// temporary one. Every attempt costs exactly two argon2 verifications, whatever the
/// account's state: a missing hash (unknown, disabled or blocked account — `None` —,
/// no password yet, no pending temporary password) is checked against a dummy hash,
/// so the answer's timing reveals neither the account nor a pending temporary
/// password. Returns (verified, with the temporary password).
pub async fn verify_sign_in(
    hasher: &PasswordHasher,
    password: &Plaintext,
    account: Option<(Option<&str>, Option<&str>)>,
) -> (bool, bool) {
    let (permanent, temporary) = account.unwrap_or((None, None));
    let (permanent_ok, temporary_ok) = futures_util::future::join(
        hasher.verify(password, permanent, Priority::Interactive),
        hasher.verify(password, temporary, Priority::Interactive),
    )
    .await;
    (permanent_ok || temporary_ok, !permanent_ok && temporary_ok)
}

/// The one message for every failed sign-in, whatever the reason.
pub const SIGN_IN_FAILED: &str = "The email or password is not right. Check both and try again.";

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
    events::store::record(&mut tx, now, &event).await?;
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

/// Checks a chosen password against the password policy: at least `min`
/// characters, not the email.
pub fn check_new_password(new: &str, email: &str, min: usize) -> Result<(), String> {
    let n = new.chars().count();
    if n < min {
        return Err(format!("Use at least {min} characters."));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!("Use at most {MAX_PASSWORD_CHARS} characters."));
    }
    if new.trim().eq_ignore_ascii_case(email) {
        return Err("Your password cannot be your email address.".into());
    }
    Ok(())
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
