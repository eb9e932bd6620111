//! Self sign-up, when Settings allow it: a new contact and *Registered to System (C)*.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::contacts::{self, ContactInput};
use crate::events;
use crate::state::AppState;
use crate::types::EmailAddress;
use crate::web::form::FieldErrors;
use crate::web::{AppError, PageContext, render};

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

pub(super) async fn signup_page(
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
pub(super) struct SignupForm {
    #[serde(default)]
    email: String,
    consent: Option<String>,
}

/// Self sign-up (when enabled in Settings): creates the contact and records
/// *Registered to System (C)* with source "preference center". An address that
/// exists already gets the same answer and changes nothing.
pub(super) async fn signup(
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
