//! Choosing a password: forced after the emailed one, or voluntary.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::auth::{Plaintext, Priority};
use crate::state::AppState;
use crate::web::form::FieldErrors;
use crate::web::middleware::MUST_CHANGE_KEY;
use crate::web::session_store::end_sessions_of;
use crate::web::{AppError, FlashKind, PageContext, csrf, flash, redirect, render};

use super::{KIND, credentials, must_change, signed_in};

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

pub(super) async fn password_page(
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

pub(super) async fn change_password(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    form: web::Form<crate::pages::staff::sign_in::PasswordForm>,
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
    let errors = crate::pages::staff::sign_in::check_password_change(
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
