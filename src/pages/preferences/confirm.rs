//! The double opt-in confirmation link. `GET` shows a page with one button (a
//! link scanner that opens it confirms nobody); `POST` confirms: the pending
//! membership becomes a membership and *Subscribed to Group (C)* is recorded. A
//! link that was altered, has expired or has nothing left to confirm gets a page
//! that says what to do instead.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::consent::{self, ConfirmToken, Confirmed, How, Method};
use crate::state::AppState;
use crate::web::{AppError, PageContext, render};

#[derive(Template)]
#[template(path = "preferences/confirm.html")]
struct ConfirmPage {
    ctx: PageContext,
    token: String,
    state: Said,
}

/// What the page says.
enum Said {
    /// The button, for this group and address.
    Ask { group: String, email: String },
    /// Confirmed now.
    Joined { group: String, email: String },
    /// Confirmed before.
    Already { group: String },
    /// The link's lifetime is over.
    Expired,
    /// Altered, or nothing waits for it any more.
    Invalid,
}

impl Said {
    fn status(&self) -> StatusCode {
        match self {
            Said::Expired => StatusCode::GONE,
            Said::Invalid => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        }
    }
}

/// The page, in the brand's name, with nothing of the preference center's
/// navigation; `csrf` is the session's token for the button's form.
async fn page(
    state: &AppState,
    csrf: String,
    token: String,
    said: Said,
) -> Result<HttpResponse, AppError> {
    let mut ctx = PageContext::bare();
    ctx.brand = state.settings.load(&state.db).await?.brand_name;
    ctx.csrf = csrf;
    render(
        said.status(),
        &ConfirmPage {
            ctx,
            token,
            state: said,
        },
    )
}

/// The token, if it is a confirmation token that has not expired, or what to say.
fn read(state: &AppState, token: &str) -> Result<ConfirmToken, Said> {
    let t = state.confirmations.read(token).ok_or(Said::Invalid)?;
    if t.expired(state.clock.now_ms()) {
        return Err(Said::Expired);
    }
    Ok(t)
}

pub(super) async fn confirm_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let said = match read(&state, &token) {
        Err(said) => said,
        Ok(t) => {
            let pending = consent::pending_of(&state.db, t.contact).await?;
            let contact = crate::contacts::find(&state.db, t.contact).await?;
            match (pending.into_iter().find(|p| p.group_id == t.group), contact) {
                (Some(p), Some(c)) => Said::Ask {
                    group: p.group_name,
                    email: c.email,
                },
                _ => match crate::contacts::groups::find(&state.db, t.group).await? {
                    Some(g)
                        if crate::contacts::groups::is_member(&state.db, g.id, t.contact)
                            .await? =>
                    {
                        Said::Already { group: g.name }
                    }
                    _ => Said::Invalid,
                },
            }
        }
    };
    page(&state, ctx.csrf, token.into_inner(), said).await
}

pub(super) async fn confirm(
    state: web::Data<AppState>,
    ctx: PageContext,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let t = match read(&state, &token) {
        Ok(t) => t,
        Err(said) => return page(&state, ctx.csrf, token.into_inner(), said).await,
    };
    let how = How::new(Method::ConfirmationLink).from_request(&req, &state.config.trusted_proxies);
    let mut tx = state.db.begin().await?;
    let done = consent::confirm(&mut tx, &t, &how, state.clock.now_ms()).await?;
    state.db.commit(tx).await?;
    let said = match done {
        Confirmed::Joined(group) => {
            tracing::info!(
                contact = t.contact,
                group = t.group,
                "subscription confirmed"
            );
            let email = crate::contacts::find(&state.db, t.contact)
                .await?
                .map(|c| c.email)
                .unwrap_or_default();
            Said::Joined { group, email }
        }
        Confirmed::AlreadyMember(group) => Said::Already { group },
        Confirmed::NothingPending => Said::Invalid,
    };
    page(&state, ctx.csrf, token.into_inner(), said).await
}
