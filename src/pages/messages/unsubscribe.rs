//! One-click unsubscribe (RFC 8058): the signed link of every prepared message.
//! `GET` shows a page with one button (link scanners must not unsubscribe anyone);
//! `POST` — the button, or a mail provider's one-click — unsubscribes at once,
//! without signing in: from the link's group (recording *Unsubscribed from Group
//! (C)*), or from every prepared message (the contact's opt-out flag) — also when
//! the link names a group the contact is not in, since leaving it would change
//! nothing. The page says which before the button.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::messages::compose::Unsubscribe;
use crate::state::AppState;
use crate::web::{AppError, PageContext, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/u/{token}", web::get().to(confirm_page))
        .route("/u/{token}", web::post().to(unsubscribe));
}

#[derive(Template)]
#[template(path = "preferences/unsubscribe.html")]
struct UnsubscribePage {
    ctx: PageContext,
    token: String,
    email: String,
    /// What the button does.
    effect: Effect,
    done: bool,
}

/// What unsubscribing through a link does.
enum Effect {
    /// Leave this group (the contact is in it).
    LeaveGroup(String),
    /// Stop every prepared message; with the group the link named, which the
    /// contact is not in.
    StopAll(Option<String>),
}

/// The contact's email a valid token names, and what unsubscribing does.
async fn resolve(state: &AppState, token: &str) -> Result<(Unsubscribe, String, Effect), AppError> {
    let u = state
        .links
        .verify(token)
        .and_then(Unsubscribe::parse)
        .ok_or(AppError::NotFound)?;
    let cutover = crate::messages::compose::link_cutover(&state.db).await?;
    // A link made for a deleted contact never acts on a later one with its id.
    let contact = crate::contacts::find(&state.db, u.contact)
        .await?
        .filter(|c| Unsubscribe::names(u.contact_since, c.created_at, cutover))
        .ok_or(AppError::NotFound)?;
    // Likewise a group: a link whose group is gone undoes every prepared message.
    let group = match u.group {
        Some(g) => crate::contacts::groups::find(&state.db, g)
            .await?
            .filter(|g| Unsubscribe::names(u.group_since, g.created_at, cutover)),
        None => None,
    };
    let effect = match group {
        Some(g) if crate::contacts::groups::is_member(&state.db, g.id, contact.id).await? => {
            Effect::LeaveGroup(g.name)
        }
        other => Effect::StopAll(other.map(|g| g.name)),
    };
    Ok((u, contact.email, effect))
}

async fn confirm_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (_, email, effect) = resolve(&state, &token).await?;
    page(&state, token.into_inner(), email, effect, false).await
}

async fn page(
    state: &AppState,
    token: String,
    email: String,
    effect: Effect,
    done: bool,
) -> Result<HttpResponse, AppError> {
    let brand = crate::settings::Settings::load(&state.db).await?.brand_name;
    let mut ctx = PageContext::bare();
    ctx.brand = brand;
    render(
        StatusCode::OK,
        &UnsubscribePage {
            ctx,
            token,
            email,
            effect,
            done,
        },
    )
}

async fn unsubscribe(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (u, email, effect) = resolve(&state, &token).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    match (&effect, u.group) {
        (Effect::LeaveGroup(_), Some(g)) => {
            let how = crate::consent::How::new(crate::consent::Method::UnsubscribeLink)
                .from_request(&req, &state.config.trusted_proxies);
            crate::consent::unsubscribe(&mut tx, u.contact, g, &how, now).await?;
        }
        _ => crate::contacts::opt_out(&mut tx, u.contact, now).await?,
    }
    if let Some(reference) = u.reference() {
        crate::engagement::unsubscribed(&mut tx, &reference, now).await?;
    }
    state.db.commit(tx).await?;
    tracing::info!(contact = u.contact, group = ?u.group, "unsubscribed through a link");
    page(&state, token.into_inner(), email, effect, true).await
}
