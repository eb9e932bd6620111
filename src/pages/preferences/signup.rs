//! Self sign-up, when Settings allow it: a new contact and *Registered to System (C)*.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::consent::{self, How, Method};
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
    /// The groups visible in the preference center, and those ticked.
    choices: Vec<super::choices::Choice>,
    chosen: Vec<i64>,
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
            choices: super::choices::choices(&state, None).await?,
            chosen: Vec::new(),
        },
    )
}

/// Self sign-up (when enabled in Settings): creates the contact and records
/// *Registered to System (C)* with source "preference center". An address that
/// exists already gets the same answer and changes nothing.
pub(super) async fn signup(
    state: web::Data<AppState>,
    ctx: PageContext,
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    signup_enabled(&state).await?;
    let form = crate::web::form::Fields::from_pairs(form.into_inner());
    let choices = super::choices::choices(&state, None).await?;
    // Only groups offered here can be chosen.
    let chosen: Vec<i64> = form
        .all("group")
        .iter()
        .filter_map(|v| v.parse().ok())
        .filter(|id| choices.iter().any(|c| c.id == *id))
        .collect();
    let mut errors = FieldErrors::new();
    let email = EmailAddress::parse(form.get("email"))
        .map_err(|e| errors.insert("email", e.0))
        .ok();
    if !form.has("consent") {
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
                email: form.get("email").to_string(),
                errors,
                done: false,
                choices,
                chosen,
            },
        );
    };
    let input = ContactInput {
        email,
        first_name: String::new(),
        last_name: String::new(),
        attributes: Default::default(),
    };
    let now = state.clock.now_ms();
    let existing = contacts::find_by_email(&state.db, input.email.as_str()).await?;
    let mut tx = state.db.begin().await?;
    let id = match existing {
        Some(c) => Some(c.id),
        None => match contacts::create(
            &mut tx,
            &input,
            events::catalogue::Source::PreferenceCenter,
            now,
        )
        .await
        {
            Ok(id) => Some(id),
            // Created at the same moment: that sign-up subscribes it.
            Err(contacts::SaveError::Duplicate) => None,
            Err(contacts::SaveError::Database(e)) => return Err(e.into()),
        },
    };
    match id {
        Some(id) => {
            // A known address gets the same answer; its lists that ask for a
            // confirmation change only once its owner confirms.
            let how = How::new(Method::SignUp).from_request(&req, &state.config.trusted_proxies);
            for group in &chosen {
                consent::subscribe(&mut tx, id, *group, &how, now).await?;
            }
            state.db.commit(tx).await?;
        }
        None => tx.rollback().await?,
    }
    render(
        StatusCode::OK,
        &SignupPage {
            ctx,
            email: String::new(),
            errors: FieldErrors::new(),
            done: true,
            choices,
            chosen: Vec::new(),
        },
    )
}
