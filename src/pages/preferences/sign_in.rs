//! Signing in to the preference center (with the password or the emailed one),
//! asking for a new password, signing out. Every sign-in is audited.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self, Action, Actor};
use crate::auth::Plaintext;
use crate::auth::throttle;
use crate::contacts::{self};
use crate::events::catalogue::{EventType, NewEvent};
use crate::state::AppState;
use crate::types::EmailAddress;
use crate::web::middleware::MUST_CHANGE_KEY;
use crate::web::session_store::{USER_ID_KEY, end_sessions_of};
use crate::web::{AppError, PageContext, client_ip, csrf, redirect, render};

use super::{FORGOT_PER_ADDRESS, FORGOT_PER_IP, KIND, credentials, signed_in};

#[derive(Template)]
#[template(path = "preferences/login.html")]
struct LoginPage {
    ctx: PageContext,
    email: String,
    error: Option<&'static str>,
    signed_out: bool,
}

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    signed_out: Option<String>,
}

pub(super) async fn login_page(
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
pub(super) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn login(
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
        let temp = crate::auth::password::usable_temp(
            c.temp_hash.as_deref(),
            c.temp_expires_at,
            c.temp_used_at,
            now,
        );
        (c.password_hash.as_deref(), temp)
    });
    let (verified, with_temp) =
        crate::auth::password::verify_sign_in(&state.hasher, &password, stored).await;
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
        // The attempt is stored as a failure already (`throttle::wait_turn`).
        audit_sign_in(&state, now, &email, Action::SignInFailed, "", &ip).await?;
        return render(
            StatusCode::UNAUTHORIZED,
            &LoginPage {
                ctx,
                email: form.email,
                error: Some(crate::auth::password::SIGN_IN_FAILED),
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
    /// What to change in the address (never whether it is known).
    error: Option<&'static str>,
    email: String,
}

pub(super) async fn forgot_page(ctx: PageContext) -> Result<HttpResponse, AppError> {
    let page = ForgotPage {
        ctx,
        sent: false,
        error: None,
        email: String::new(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub(super) struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// A request for a new password, as the answer left it.
struct PasswordRequest {
    email: EmailAddress,
    ip: String,
    at: i64,
    /// Beyond the requests allowed per address or per client in 15 minutes.
    limited: bool,
}

impl PasswordRequest {
    /// Records *New Password Requested (C)* when the address is an active
    /// contact's and the request is within its limits; a limited request, or one
    /// for a blocked contact, goes to the audit log instead.
    async fn follow_up(self, db: &crate::db::Db) -> Result<(), sqlx::Error> {
        let Some(c) = contacts::find_by_email(db, self.email.as_str()).await? else {
            return Ok(());
        };
        if !c.is_blocked() && !self.limited {
            let mut tx = db.begin().await?;
            let event = NewEvent::contact(EventType::NewPasswordRequested, c.id);
            crate::intake::events::record(&mut tx, self.at, &event).await?;
            return db.commit(tx).await;
        }
        tracing::info!(ip = %self.ip, "preference center: new password request limited or for a blocked contact");
        // Staff see it in the audit log (the address is a contact's, known to them).
        let entry = audit::Entry {
            actor: &Actor::contact(&c.email),
            action: Action::PasswordRequestLimited,
            target: "preference center",
            detail: if c.is_blocked() {
                "the contact is blocked"
            } else {
                "too many requests in 15 minutes"
            },
            ip: &self.ip,
        };
        audit::record_now(db, self.at, entry).await
    }
}

/// Records *New Password Requested (C)* for an existing active contact (the
/// automation staff configured sends the email). The answer is the same, word for
/// word, whether or not the address exists; limited per address and per client.
pub(super) async fn forgot(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    form: web::Form<ForgotForm>,
) -> Result<HttpResponse, AppError> {
    let ip = client_ip(&req, &state.config.trusted_proxies);
    let now = state.clock.now_ms();
    let email: String = form.email.trim().to_lowercase().chars().take(254).collect();
    // An empty or malformed address is a typing mistake: say so (known or unknown
    // addresses still get the same answer).
    let parsed = match EmailAddress::parse(&email) {
        _ if email.is_empty() => Err("Enter your email address."),
        Err(_) => Err("Enter your email address in the form name@example.com."),
        Ok(address) => Ok(address),
    };
    let address = match parsed {
        Ok(address) => address,
        Err(error) => {
            let page = ForgotPage {
                ctx,
                sent: false,
                error: Some(error),
                email: form.email.chars().take(254).collect(),
            };
            return render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    // The answer waits for the same statements whatever the address: the request
    // is counted against its limits and stored. Whether the address is a contact's,
    // and recording the event or the audit entry, happens after the answer, so its
    // timing says nothing about the address (known addresses took a transaction
    // more).
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
    let request = PasswordRequest {
        email: address,
        ip,
        at: now,
        limited: by_address >= FORGOT_PER_ADDRESS || by_ip >= FORGOT_PER_IP,
    };
    let db = state.db.clone();
    tokio::spawn(async move {
        if let Err(e) = request.follow_up(&db).await {
            tracing::error!(error = %e, "a new password request could not be recorded");
        }
    });
    let page = ForgotPage {
        ctx,
        sent: true,
        error: None,
        email: String::new(),
    };
    render(StatusCode::OK, &page)
}

pub(super) async fn logout(session: Session) -> HttpResponse {
    session.purge();
    redirect("/preferences/login?signed_out=1")
}
