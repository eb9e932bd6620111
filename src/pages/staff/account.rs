//! Your account: a system user's own name, their email (a new one is used once
//! they open the link sent to it) and the addresses their test sends go to.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::Action;
use crate::auth::users::{self, CreateError, parse_test_addresses};
use crate::mail::Email;
use crate::settings::Settings;
use crate::state::AppState;
use crate::types::{EmailAddress, PersonName, hex, sha256_hex};
use crate::web::form::{FieldErrors, Fields, FormPage};
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect,
    render,
};

/// How long the link that confirms a new email address works.
const LINK_HOURS: i64 = 24;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account", web::get().to(page))
        .route("/account", web::post().to(save))
        .route("/account/email", web::get().to(confirm_page))
        .route("/account/email", web::post().to(confirm));
}

#[derive(Template)]
#[template(path = "auth/account.html")]
struct AccountPage {
    ctx: PageContext,
    f: Fields,
    errors: FieldErrors,
    email: String,
}

crate::form_page!(AccountPage);

async fn page(
    state: web::Data<AppState>,
    ctx: PageContext,
    me: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let mut f = Fields::default();
    f.set("name", &me.name);
    f.set("email", &me.email);
    let kept = users::test_addresses(&state.db, me.id).await?;
    f.set(
        "test_addresses",
        if kept.is_empty() {
            me.email.clone()
        } else {
            kept.join(", ")
        },
    );
    render(
        StatusCode::OK,
        &AccountPage {
            ctx,
            f,
            errors: FieldErrors::new(),
            email: me.email,
        },
    )
}

async fn save(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    session: Session,
    me: CurrentUser,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let f = Fields::from_pairs(form.into_inner());
    let mut errors = FieldErrors::new();
    let name = PersonName::parse(f.get("name"))
        .map_err(|e| errors.insert("name", e.0))
        .ok();
    let email = EmailAddress::parse(f.get("email"))
        .map_err(|e| errors.insert("email", e.0))
        .ok();
    let tests = parse_test_addresses(f.get("test_addresses"))
        .map_err(|e| errors.insert("test_addresses", e))
        .ok();
    let new_email = email.filter(|e| e.as_str() != me.email);
    if let Some(e) = &new_email
        && users::find_by_email(&state.db, e.as_str()).await?.is_some()
    {
        errors.insert("email", CreateError::Exists.to_string());
    }
    let (Some(name), Some(tests)) = (name, tests) else {
        return invalid(ctx, f, errors, me.email);
    };
    if !errors.is_empty() {
        return invalid(ctx, f, errors, me.email);
    }
    audited_change(
        &state,
        &req,
        &me,
        Action::AccountChanged,
        &me.email,
        &format!("name {}", name.as_str()),
        async |tx, now| {
            users::set_name(tx, me.id, &name, now).await?;
            users::set_test_addresses(tx, me.id, &tests).await
        },
    )
    .await?;
    let Some(new_email) = new_email else {
        flash(&session, FlashKind::Success, "Your account was saved.");
        return Ok(redirect("/account"));
    };
    let now = state.clock.now_ms();
    let token = EmailLink {
        user_id: me.id,
        new_email: new_email.clone(),
        expires_at: now + LINK_HOURS * 3_600_000,
        current: fingerprint(me.id, &me.email),
    }
    .sign(&state);
    let link = format!("{}account/email?token={token}", state.config.base_url);
    let settings = Settings::load(&state.db).await?;
    let email = Email {
        from_name: settings.sender_name.clone(),
        from_address: settings.sender_address.clone(),
        to_name: name.as_str().to_string(),
        to: new_email.to_string(),
        subject: format!("Confirm your new email address for {}", settings.brand_name),
        text: format!(
            "Hello {name},\n\nyou asked to sign in to {brand} with this address from now on \
             instead of {old}. Open this link within {LINK_HOURS} hours to confirm:\n\n    {link}\n\n\
             If you did not ask for this, ignore this email: nothing changes.\n\n{brand}\n",
            name = name.as_str(),
            brand = settings.brand_name,
            old = me.email,
        ),
        html: String::new(),
        ..Default::default()
    };
    audited_change(
        &state,
        &req,
        &me,
        Action::AccountEmailRequested,
        new_email.as_str(),
        "confirmation link sent",
        async |_, _| Ok(()),
    )
    .await?;
    match state.mailer.send(&email).await {
        Ok(_) => flash(
            &session,
            FlashKind::Success,
            format!(
                "We sent a link to {new_email}. Your email stays {} until you open it (within {LINK_HOURS} hours).",
                me.email
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "the email-change link was not sent");
            flash(
                &session,
                FlashKind::Error,
                format!(
                    "The mail server did not take the link for {new_email}; your email stays {}. Try again in a moment.",
                    me.email
                ),
            );
        }
    }
    Ok(redirect("/account"))
}

fn invalid(
    ctx: PageContext,
    f: Fields,
    errors: FieldErrors,
    email: String,
) -> Result<HttpResponse, AppError> {
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &AccountPage {
            ctx,
            f,
            errors,
            email,
        },
    )
}

/// What the link to confirm a new email says: whose account, the new address,
/// until when, and a fingerprint of the address it replaces (so it works once:
/// after the change, or any other change, the fingerprint no longer matches).
struct EmailLink {
    user_id: i64,
    new_email: EmailAddress,
    expires_at: i64,
    current: String,
}

fn fingerprint(user_id: i64, email: &str) -> String {
    sha256_hex(format!("{user_id}\n{email}").as_bytes())[..16].to_string()
}

impl EmailLink {
    fn sign(&self, state: &AppState) -> String {
        state.account_links.sign(&format!(
            "{}-{}-{}-{}",
            self.user_id,
            hex(self.new_email.as_str().as_bytes()),
            self.expires_at,
            self.current
        ))
    }

    fn verify(state: &AppState, token: &str) -> Option<Self> {
        let payload = state.account_links.verify(token)?;
        let mut parts = payload.split('-');
        let user_id = parts.next()?.parse().ok()?;
        let raw = parts.next()?;
        let bytes = (0..raw.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(raw.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let new_email = EmailAddress::parse(std::str::from_utf8(&bytes).ok()?).ok()?;
        let expires_at = parts.next()?.parse().ok()?;
        let current = parts.next()?.to_string();
        Some(Self {
            user_id,
            new_email,
            expires_at,
            current,
        })
    }

    /// Whether the link may change `me`'s email now; why not, in words.
    fn check(&self, me: &CurrentUser, now_ms: i64) -> Result<(), &'static str> {
        if self.user_id != me.id {
            Err(
                "This link was sent for another system user's account. Sign out and sign in as that user to use it.",
            )
        } else if self.current != fingerprint(me.id, &me.email) {
            Err("This link was already used, or your email changed after it was sent.")
        } else if now_ms >= self.expires_at {
            Err(
                "This link has expired. Enter the new address on Your account again to get a new one.",
            )
        } else {
            Ok(())
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// Reads the link, or answers why it cannot be used.
fn usable_link(state: &AppState, me: &CurrentUser, token: &str) -> Result<EmailLink, AppError> {
    let link = EmailLink::verify(state, token).ok_or_else(|| {
        AppError::BadRequest("This link is not complete. Open it from the email again.".into())
    })?;
    link.check(me, state.clock.now_ms())
        .map_err(|why| AppError::BadRequest(why.into()))?;
    Ok(link)
}

async fn confirm_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    me: CurrentUser,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let link = usable_link(&state, &me, &query.token)?;
    ConfirmPage {
        ctx,
        title: "Confirm your new email".into(),
        message: format!(
            "From now on you sign in with {} instead of {}, and Herald's emails to you go there.",
            link.new_email, me.email
        ),
        action: format!("/account/email?token={}", query.token),
        button: "Use the new email",
        cancel: "/account".into(),
    }
    .render()
}

async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    me: CurrentUser,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, AppError> {
    let link = usable_link(&state, &me, &query.token)?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let changed = match users::change_email(&mut tx, me.id, &me.email, &link.new_email, now).await {
        Ok(changed) => changed,
        Err(CreateError::Exists) => {
            flash(
                &session,
                FlashKind::Error,
                format!(
                    "{} now belongs to another system user; your email stays {}.",
                    link.new_email, me.email
                ),
            );
            return Ok(redirect("/account"));
        }
        Err(CreateError::Database(e)) => return Err(e.into()),
        Err(CreateError::Other(e)) => return Err(AppError::Unexpected(e)),
    };
    if !changed {
        return Err(AppError::BadRequest(
            "This link was already used, or your email changed after it was sent.".into(),
        ));
    }
    crate::audit::record(
        &mut tx,
        now,
        crate::audit::Entry {
            actor: &crate::audit::Actor::user(me.id, &me.email),
            action: Action::AccountEmailChanged,
            target: link.new_email.as_str(),
            detail: &format!("from {}", me.email),
            ip: &crate::web::client_ip(&req, &state.config.trusted_proxies),
        },
    )
    .await?;
    state.db.commit(tx).await?;
    notify_old_address(&state, &me, &link.new_email).await;
    flash(
        &session,
        FlashKind::Success,
        format!(
            "Your email is now {}; sign in with it from now on.",
            link.new_email
        ),
    );
    Ok(redirect("/account"))
}

/// Tells the address that was replaced, so a change nobody asked for is noticed.
/// Best effort: the change stands whether or not this email leaves.
async fn notify_old_address(state: &AppState, me: &CurrentUser, new_email: &EmailAddress) {
    let Ok(settings) = Settings::load(&state.db).await else {
        return;
    };
    let email = Email {
        from_name: settings.sender_name.clone(),
        from_address: settings.sender_address.clone(),
        to_name: me.name.clone(),
        to: me.email.clone(),
        subject: format!("Your email address for {} was changed", settings.brand_name),
        text: format!(
            "Hello {name},\n\nfrom now on you sign in to {brand} with {new_email} instead of this \
             address.\n\nIf you did not change it, tell an administrator of {brand} now.\n\n{brand}\n",
            name = me.name,
            brand = settings.brand_name,
        ),
        html: String::new(),
        ..Default::default()
    };
    if let Err(e) = state.mailer.send(&email).await {
        tracing::warn!(error = %e, "the notice to the replaced address was not sent");
    }
}
