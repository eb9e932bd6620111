//! The preferences page: the groups shown in the preference center, and the name.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::contacts::{self, Contact, ContactInput};
use crate::state::AppState;
use crate::types::EmailAddress;
use crate::web::form::FieldErrors;
use crate::web::{AppError, FlashKind, PageContext, flash, redirect, render};

use super::{must_change, signed_in};

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
    /// How opens and clicks are tracked now, and whether this contact refused it.
    tracking: crate::settings::Tracking,
    untracked: bool,
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

/// How opens and clicks are tracked, and whether the contact refused it.
async fn tracking_of(
    state: &AppState,
    contact_id: i64,
) -> Result<(crate::settings::Tracking, bool), AppError> {
    Ok((
        state.settings.load(&state.db).await?.tracking,
        contacts::refuses_tracking(&state.db, contact_id).await?,
    ))
}

pub(super) async fn preferences_page(
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
    let (tracking, untracked) = tracking_of(&state, contact.id).await?;
    render(
        StatusCode::OK,
        &PreferencesPage {
            ctx,
            first_name: contact.first_name.clone(),
            last_name: contact.last_name.clone(),
            contact,
            choices,
            errors: FieldErrors::new(),
            tracking,
            untracked,
        },
    )
}

pub(super) async fn save_preferences(
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
                tracking: state.settings.load(&state.db).await?.tracking,
                untracked: f.has("untracked"),
            },
        );
    };
    let wanted: Vec<i64> = f
        .all("group")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let now = state.clock.now_ms();
    // Read before the transaction: on PostgreSQL a read through the pool while the
    // transaction holds a connection could wait for ever under load.
    let current = choices(&state, contact.id).await?;
    let attributes = contacts::attributes(&state.db, contact.id).await?;
    let (_, untracked) = tracking_of(&state, contact.id).await?;
    let mut tx = state.db.begin().await?;
    // Only groups visible here change; hidden memberships are never touched.
    for choice in current {
        let want = wanted.contains(&choice.id);
        if want && !choice.member {
            contacts::join_group(&mut tx, contact.id, choice.id, now).await?;
        } else if !want && choice.member {
            contacts::leave_group(&mut tx, contact.id, choice.id, now).await?;
        }
    }
    // The global opt-out: set by an unsubscribe link, cleared only here.
    match (f.has("receive_messages"), contact.is_opted_out()) {
        (true, true) => contacts::opt_in(&mut tx, contact.id, now).await?,
        (false, false) => contacts::opt_out(&mut tx, contact.id, now).await?,
        _ => {}
    }
    if f.has("untracked") != untracked {
        contacts::set_refuses_tracking(&mut tx, contact.id, f.has("untracked")).await?;
    }
    if first_name != contact.first_name || last_name != contact.last_name {
        let input = ContactInput {
            email: EmailAddress::parse(&contact.email)
                .map_err(|e| anyhow::anyhow!("stored email: {e}"))?,
            first_name,
            last_name,
            attributes: attributes.into_iter().collect(),
        };
        contacts::update(&mut tx, &contact, &input, now)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    state.db.commit(tx).await?;
    flash(&session, FlashKind::Success, "Your preferences are saved.");
    Ok(redirect("/preferences"))
}
