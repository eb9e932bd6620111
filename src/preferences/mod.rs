//! The public preference center (SPEC §8): contacts sign in with their password or
//! an emailed temporary one, choose their own password, change their message
//! preferences (the groups visible here) and their name. Its own session cookie
//! (`herald_preferences`, path `/preferences`); nothing of the admin UI.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Action, Actor};
use crate::auth::throttle;
use crate::auth::{Plaintext, Priority};
use crate::contacts::{self, Contact, ContactInput};
use crate::events;
use crate::events::catalogue::{EventType, NewEvent};
use crate::state::AppState;
use crate::types::EmailAddress;
use crate::web::form::FieldErrors;
use crate::web::middleware::MUST_CHANGE_KEY;
use crate::web::session_store::{USER_ID_KEY, end_sessions_of};
use crate::web::{AppError, FlashKind, PageContext, client_ip, csrf, flash, redirect, render};

const KIND: &str = "contact";
/// Requests for a new password per address (and per client) in 15 minutes.
const FORGOT_PER_ADDRESS: i64 = 3;
const FORGOT_PER_IP: i64 = 20;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(preferences_page))
        .route("", web::post().to(save_preferences))
        .route("/", web::get().to(|| async { redirect("/preferences") }))
        .route("/login", web::get().to(login_page))
        .route("/login", web::post().to(login))
        .route("/forgot", web::get().to(forgot_page))
        .route("/forgot", web::post().to(forgot))
        .route("/password", web::get().to(password_page))
        .route("/password", web::post().to(change_password))
        .route("/logout", web::post().to(logout))
        .route("/signup", web::get().to(signup_page))
        .route("/signup", web::post().to(signup))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(AppError::NotFound)
        }));
}

#[derive(sqlx::FromRow)]
struct Credentials {
    id: i64,
    status: String,
    password_hash: Option<String>,
    temp_hash: Option<String>,
    temp_expires_at: Option<i64>,
    temp_used_at: Option<i64>,
}

async fn credentials(state: &AppState, email: &str) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, password_hash, temp_hash, temp_expires_at, temp_used_at FROM contacts WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(state.db.read())
    .await
}

/// The signed-in contact, if the session has one that is still active.
async fn signed_in(state: &AppState, session: &Session) -> Result<Option<Contact>, AppError> {
    let Some(id) = session.get::<i64>(USER_ID_KEY).ok().flatten() else {
        return Ok(None);
    };
    let contact = contacts::find(&state.db, id)
        .await?
        .filter(|c| !c.is_blocked());
    if contact.is_none() {
        session.purge();
    }
    Ok(contact)
}

fn must_change(session: &Session) -> bool {
    session
        .get::<bool>(MUST_CHANGE_KEY)
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[derive(Template)]
#[template(path = "preferences/login.html")]
struct LoginPage {
    ctx: PageContext,
    email: String,
    error: Option<&'static str>,
    signed_out: bool,
}

#[derive(Deserialize)]
struct LoginQuery {
    signed_out: Option<String>,
}

async fn login_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, AppError> {
    if signed_in(&state, &session).await?.is_some() {
        return Ok(redirect("/preferences"));
    }
    render(
        StatusCode::OK,
        &LoginPage {
            ctx,
            email: String::new(),
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
    let email: String = form.email.trim().to_lowercase().chars().take(254).collect();
    let account = format!("contact:{email}");
    throttle::wait_turn(&state.db, state.clock.now_ms(), &account, &ip).await?;
    let now = state.clock.now_ms();
    let password = Plaintext::new(form.password);
    let found = credentials(&state, &email).await?;
    let stored = found.as_ref().filter(|c| c.status == "active").map(|c| {
        let temp = crate::auth::usable_temp(
            c.temp_hash.as_deref(),
            c.temp_expires_at,
            c.temp_used_at,
            now,
        );
        (c.password_hash.as_deref(), temp)
    });
    let (verified, with_temp) = crate::auth::verify_sign_in(&state.hasher, &password, stored).await;
    let used = match (&found, verified, with_temp) {
        (Some(c), true, true) => sqlx::query(
            "UPDATE contacts SET temp_used_at = $1 WHERE id = $2 AND temp_used_at IS NULL AND temp_hash IS NOT NULL",
        )
        .bind(now)
        .bind(c.id)
        .execute(state.db.write())
        .await?
        .rows_affected()
            == 1,
        _ => true,
    };
    let Some(contact) = found.filter(|_| verified && used) else {
        throttle::record_failure(&state.db, now, &account, &ip).await?;
        audit_sign_in(&state, now, &email, Action::SignInFailed, "", &ip).await?;
        return render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                ctx,
                email: form.email,
                error: Some(crate::auth::SIGN_IN_FAILED),
                signed_out: false,
            },
        );
    };
    throttle::clear_account(&state.db, &account).await?;
    let detail = if with_temp { "temporary password" } else { "" };
    audit_sign_in(&state, now, &email, Action::SignInSucceeded, detail, &ip).await?;
    if with_temp {
        // The emailed password is used: the contact's other sessions end.
        end_sessions_of(&state.db, KIND, contact.id).await?;
    }
    session.clear();
    session.renew();
    session
        .insert(USER_ID_KEY, contact.id)
        .map_err(|e| anyhow::anyhow!("session: {e}"))?;
    csrf::rotate(&session);
    if with_temp {
        session
            .insert(MUST_CHANGE_KEY, true)
            .map_err(|e| anyhow::anyhow!("session: {e}"))?;
        return Ok(redirect("/preferences/password"));
    }
    Ok(redirect("/preferences"))
}

/// A preference-center sign-in in the audit log, by `contact:<email>`.
async fn audit_sign_in(
    state: &AppState,
    now: i64,
    email: &str,
    action: Action,
    detail: &str,
    ip: &str,
) -> Result<(), sqlx::Error> {
    let entry = audit::Entry {
        actor: &Actor::contact(email),
        action,
        target: "preference center",
        detail,
        ip,
    };
    audit::record_now(&state.db, now, entry).await
}

#[derive(Template)]
#[template(path = "preferences/forgot.html")]
struct ForgotPage {
    ctx: PageContext,
    sent: bool,
}

async fn forgot_page(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, &ForgotPage { ctx, sent: false })
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// Records *New Password Requested (C)* for an existing active contact (the
/// automation staff configured sends the email). The answer is the same, word for
/// word, whether or not the address exists; limited per address and per client.
async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(&req, &state.config.trusted_proxies);
    let now = state.clock.now_ms();
    let email: String = form.email.trim().to_lowercase().chars().take(254).collect();
    let account = format!("forgot:{email}");
    let ip_key = format!("forgot:{ip}");
    let (by_address, by_ip): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM signin_failures WHERE account = $1 AND at > $2), \
                (SELECT COUNT(*) FROM signin_failures WHERE ip = $3 AND at > $2)",
    )
    .bind(&account)
    .bind(now - throttle::WINDOW_MS)
    .bind(&ip_key)
    .fetch_one(state.db.read())
    .await?;
    throttle::record_failure(&state.db, now, &account, &ip_key).await?;
    let contact = match EmailAddress::parse(&email) {
        Ok(e) => contacts::find_by_email(&state.db, e.as_str()).await?,
        Err(_) => None,
    };
    match contact {
        Some(c) if !c.is_blocked() && by_address < FORGOT_PER_ADDRESS && by_ip < FORGOT_PER_IP => {
            let mut tx = state.db.begin().await?;
            events::store::record(
                &mut tx,
                now,
                &NewEvent::contact(EventType::NewPasswordRequested, c.id),
            )
            .await?;
            state.db.commit(tx).await?;
        }
        Some(_) => {
            tracing::info!(%ip, "preference center: new password request limited or for a blocked contact")
        }
        None => {}
    }
    render(StatusCode::OK, &ForgotPage { ctx, sent: true })
}

#[derive(Template)]
#[template(path = "preferences/password.html")]
struct PasswordPage {
    ctx: PageContext,
    forced: bool,
    min: i64,
    errors: FieldErrors,
}

impl PasswordPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

async fn password_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
) -> Result<HttpResponse, AppError> {
    if signed_in(&state, &session).await?.is_none() {
        return Ok(redirect("/preferences/login"));
    }
    render(
        StatusCode::OK,
        &PasswordPage {
            ctx,
            forced: must_change(&session),
            min: crate::settings::Settings::load(&state.db)
                .await?
                .contact_password_min,
            errors: FieldErrors::new(),
        },
    )
}

async fn change_password(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    form: web::Form<crate::auth::PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let Some(contact) = signed_in(&state, &session).await? else {
        return Ok(redirect("/preferences/login"));
    };
    let forced = must_change(&session);
    let stored = credentials(&state, &contact.email)
        .await?
        .ok_or(AppError::NotFound)?;
    let new = Plaintext::new(form.new_password.clone());
    let min = crate::settings::Settings::load(&state.db)
        .await?
        .contact_password_min as usize;
    let errors = crate::auth::check_password_change(
        &state.hasher,
        &form,
        min,
        forced,
        &contact.email,
        stored.password_hash.as_deref(),
        stored.temp_hash.as_deref(),
        "Choose a password of your own, not the one we emailed.",
    )
    .await;
    if !errors.is_empty() {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PasswordPage {
                ctx,
                forced,
                min: min as i64,
                errors,
            },
        );
    }
    let hash = state.hasher.hash(&new, Priority::Interactive).await?;
    let now = state.clock.now_ms();
    sqlx::query(
        "UPDATE contacts SET password_hash = $1, temp_hash = NULL, temp_expires_at = NULL, temp_used_at = NULL, \
         updated_at = $2 WHERE id = $3",
    )
    .bind(&hash)
    .bind(now)
    .bind(contact.id)
    .execute(state.db.write())
    .await?;
    end_sessions_of(&state.db, KIND, contact.id).await?;
    session.remove(MUST_CHANGE_KEY);
    session.renew();
    csrf::rotate(&session);
    flash(
        &session,
        FlashKind::Success,
        "Your password has been changed.",
    );
    Ok(redirect("/preferences"))
}

/// A group as the preferences page shows it.
pub struct Choice {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub member: bool,
}

#[derive(Template)]
#[template(path = "preferences/preferences.html")]
struct PreferencesPage {
    ctx: PageContext,
    contact: Contact,
    first_name: String,
    last_name: String,
    choices: Vec<Choice>,
    errors: FieldErrors,
}

impl PreferencesPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

async fn choices(state: &AppState, contact_id: i64) -> Result<Vec<Choice>, AppError> {
    let mine: Vec<i64> = crate::contacts::groups::of_contact(&state.db, contact_id)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    Ok(crate::contacts::groups::list(&state.db)
        .await?
        .into_iter()
        .filter(|g| g.visible_in_preference_center)
        .map(|g| Choice {
            member: mine.contains(&g.id),
            id: g.id,
            name: g.name,
            description: g.description,
        })
        .collect())
}

async fn preferences_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let Some(contact) = signed_in(&state, &session).await? else {
        return Ok(redirect("/preferences/login"));
    };
    if must_change(&session) {
        return Ok(redirect("/preferences/password"));
    }
    let choices = choices(&state, contact.id).await?;
    render(
        StatusCode::OK,
        &PreferencesPage {
            ctx,
            first_name: contact.first_name.clone(),
            last_name: contact.last_name.clone(),
            contact,
            choices,
            errors: FieldErrors::new(),
        },
    )
}

async fn save_preferences(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let Some(contact) = signed_in(&state, &session).await? else {
        return Ok(redirect("/preferences/login"));
    };
    if must_change(&session) {
        return Ok(redirect("/preferences/password"));
    }
    let f = crate::web::form::Fields::from_pairs(form.into_inner());
    let mut errors = FieldErrors::new();
    let first = contacts::parse_name_part(f.get("first_name"), "first name")
        .map_err(|e| errors.insert("first_name", e.0))
        .ok();
    let last = contacts::parse_name_part(f.get("last_name"), "last name")
        .map_err(|e| errors.insert("last_name", e.0))
        .ok();
    let (Some(first_name), Some(last_name)) = (first, last) else {
        let choices = choices(&state, contact.id).await?;
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PreferencesPage {
                ctx,
                first_name: f.get("first_name").to_string(),
                last_name: f.get("last_name").to_string(),
                contact,
                choices,
                errors,
            },
        );
    };
    let wanted: Vec<i64> = f
        .all("group")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    // Only groups visible here change; hidden memberships are never touched.
    for choice in choices(&state, contact.id).await? {
        let want = wanted.contains(&choice.id);
        if want && !choice.member {
            contacts::join_group(&mut tx, contact.id, choice.id, now).await?;
        } else if !want && choice.member {
            contacts::leave_group(&mut tx, contact.id, choice.id, now).await?;
        }
    }
    if first_name != contact.first_name || last_name != contact.last_name {
        let input = ContactInput {
            email: EmailAddress::parse(&contact.email)
                .map_err(|e| anyhow::anyhow!("stored email: {e}"))?,
            first_name,
            last_name,
            attributes: contacts::attributes(&state.db, contact.id)
                .await?
                .into_iter()
                .collect(),
        };
        contacts::update(&mut tx, &contact, &input, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    state.db.commit(tx).await?;
    flash(&session, FlashKind::Success, "Your preferences are saved.");
    Ok(redirect("/preferences"))
}

async fn logout(session: Session) -> HttpResponse {
    session.purge();
    redirect("/preferences/login?signed_out=1")
}

#[derive(Template)]
#[template(path = "preferences/signup.html")]
struct SignupPage {
    ctx: PageContext,
    email: String,
    errors: FieldErrors,
    done: bool,
}

impl SignupPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

async fn signup_enabled(state: &AppState) -> Result<(), AppError> {
    if crate::settings::Settings::load(&state.db)
        .await?
        .self_signup
    {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

async fn signup_page(
    state: web::Data<AppState>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    signup_enabled(&state).await?;
    render(
        StatusCode::OK,
        &SignupPage {
            ctx,
            email: String::new(),
            errors: FieldErrors::new(),
            done: false,
        },
    )
}

#[derive(Deserialize)]
struct SignupForm {
    #[serde(default)]
    email: String,
    consent: Option<String>,
}

/// Self sign-up (when enabled in Settings): creates the contact and records
/// *Registered to System (C)* with source "preference center". An address that
/// exists already gets the same answer and changes nothing.
async fn signup(
    state: web::Data<AppState>,
    ctx: PageContext,
    form: web::Form<SignupForm>,
) -> Result<HttpResponse, AppError> {
    signup_enabled(&state).await?;
    let mut errors = FieldErrors::new();
    let email = EmailAddress::parse(&form.email)
        .map_err(|e| errors.insert("email", e.0))
        .ok();
    if form.consent.is_none() {
        errors.insert(
            "consent",
            "Tick the box to agree to receive our messages.".into(),
        );
    }
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SignupPage {
                ctx,
                email: form.email.clone(),
                errors,
                done: false,
            },
        );
    };
    let input = ContactInput {
        email,
        first_name: String::new(),
        last_name: String::new(),
        attributes: Default::default(),
    };
    let mut tx = state.db.begin().await?;
    match contacts::create(
        &mut tx,
        &input,
        events::catalogue::Source::PreferenceCenter,
        state.clock.now_ms(),
    )
    .await
    {
        Ok(_) => state.db.commit(tx).await?,
        Err(contacts::SaveError::Duplicate) => tx.rollback().await?,
        Err(contacts::SaveError::Database(e)) => return Err(e.into()),
    }
    render(
        StatusCode::OK,
        &SignupPage {
            ctx,
            email: String::new(),
            errors: FieldErrors::new(),
            done: true,
        },
    )
}
