//! The preferences page: the groups shown in the preference center, and the name.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::consent::{self, How, Method};
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
    /// Asked for, waiting for the contact's confirmation (double opt-in).
    pub pending: bool,
    /// Joining asks for a confirmation by email.
    pub double_opt_in: bool,
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

pub(super) async fn choices(
    state: &AppState,
    contact_id: Option<i64>,
) -> Result<Vec<Choice>, AppError> {
    let (mine, pending): (Vec<i64>, Vec<i64>) = match contact_id {
        Some(id) => (
            crate::contacts::groups::of_contact(&state.db, id)
                .await?
                .into_iter()
                .map(|g| g.id)
                .collect(),
            consent::pending_of(&state.db, id)
                .await?
                .into_iter()
                .map(|p| p.group_id)
                .collect(),
        ),
        None => Default::default(),
    };
    Ok(crate::contacts::groups::list(&state.db)
        .await?
        .into_iter()
        .filter(|g| g.visible_in_preference_center)
        .map(|g| Choice {
            member: mine.contains(&g.id),
            pending: pending.contains(&g.id),
            double_opt_in: g.double_opt_in,
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
    let choices = choices(&state, Some(contact.id)).await?;
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
    req: HttpRequest,
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
        let choices = choices(&state, Some(contact.id)).await?;
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
    let current = choices(&state, Some(contact.id)).await?;
    let attributes = contacts::attributes(&state.db, contact.id).await?;
    let (_, untracked) = tracking_of(&state, contact.id).await?;
    let how = How::new(Method::PreferenceCenter).from_request(&req, &state.config.trusted_proxies);
    let mut asked = false;
    let mut tx = state.db.begin().await?;
    // Only groups visible here change; hidden memberships are never touched. A
    // pending one left ticked stays pending (its email is not sent again).
    for choice in current {
        let want = wanted.contains(&choice.id);
        let has = choice.member || choice.pending;
        if want && !has {
            let done = consent::subscribe(&mut tx, contact.id, choice.id, &how, now).await?;
            asked |= done == consent::Subscribed::Pending;
        } else if !want && has {
            consent::unsubscribe(&mut tx, contact.id, choice.id, &how, now).await?;
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
    let said = if asked {
        "Your preferences are saved. We have emailed you a link to confirm the lists that ask for it: you receive them once you confirm."
    } else {
        "Your preferences are saved."
    };
    flash(&session, FlashKind::Success, said);
    Ok(redirect("/preferences"))
}

/// Sends the confirmation email of a pending group again (at most once an hour).
pub(super) async fn confirm_again(
    state: web::Data<AppState>,
    session: Session,
    req: HttpRequest,
    group: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let Some(contact) = signed_in(&state, &session).await? else {
        return Ok(redirect("/preferences/login"));
    };
    let pending = consent::pending_of(&state.db, contact.id).await?;
    let Some(p) = pending.iter().find(|p| p.group_id == *group) else {
        return Ok(redirect("/preferences"));
    };
    let how = How::new(Method::PreferenceCenter).from_request(&req, &state.config.trusted_proxies);
    let mut tx = state.db.begin().await?;
    let done =
        consent::subscribe(&mut tx, contact.id, p.group_id, &how, state.clock.now_ms()).await?;
    state.db.commit(tx).await?;
    let said = if done == (consent::Subscribed::StillPending { resent: true }) {
        (
            FlashKind::Success,
            format!(
                "We have sent the confirmation email for {} again.",
                p.group_name
            ),
        )
    } else {
        (
            FlashKind::Info,
            format!(
                "The confirmation email for {} went out less than an hour ago: please look in your inbox (and your spam folder).",
                p.group_name
            ),
        )
    };
    flash(&session, said.0, said.1);
    Ok(redirect("/preferences"))
}
