//! A contact's groups, changed by staff on the contact's page: joining goes
//! through consent like every other way in (pending under double opt-in), and
//! the consent record names the staff member.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::consent::{self, How, Method, Subscribed};
use crate::contacts::groups;
use crate::state::AppState;
use crate::web::{AppError, FlashKind, PageContext, Step, flash, redirect};

#[derive(Deserialize)]
pub(super) struct JoinForm {
    #[serde(default)]
    group_id: String,
}

pub(super) async fn join(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<JoinForm>,
) -> Result<HttpResponse, AppError> {
    let contact = load(&state, *id).await?;
    let group = match form.group_id.trim().parse::<i64>() {
        Ok(gid) => groups::find(&state.db, gid).await?,
        Err(_) => None,
    };
    let Some(group) = group else {
        flash(
            &session,
            FlashKind::Error,
            "Choose a group to add the contact to.",
        );
        return Ok(redirect(&format!("/contacts/{}", contact.id)));
    };
    let how = staff_how(&state, &ctx, &req);
    let mut tx = state.db.begin().await?;
    let now = state.clock.now_ms();
    let done = consent::subscribe(&mut tx, contact.id, group.id, &how, now).await?;
    state.db.commit(tx).await?;
    let said = match done {
        Subscribed::Joined => Some((FlashKind::Success, format!("Added to {}.", group.name))),
        Subscribed::Pending => Some((
            FlashKind::Success,
            format!(
                "{} asks for double opt-in: {} is sent a confirmation email and becomes a member once they confirm.",
                group.name, contact.email
            ),
        )),
        Subscribed::StillPending { resent } => Some((
            FlashKind::Info,
            if resent {
                format!("The confirmation email for {} is sent again.", group.name)
            } else {
                format!(
                    "{} already waits for {}'s confirmation; a confirmation email went out within the last hour.",
                    group.name, contact.email
                )
            },
        )),
        Subscribed::AlreadyMember | Subscribed::NoGroup => None,
    };
    if let Some((kind, message)) = said {
        flash(&session, kind, message);
    }
    Ok(redirect(&format!("/contacts/{}", contact.id)))
}

/// How staff changed a membership by hand, for its consent record.
fn staff_how(state: &AppState, ctx: &PageContext, req: &HttpRequest) -> How {
    How::new(Method::Staff)
        .detail(ctx.staff_label())
        .from_request(req, &state.config.trusted_proxies)
}

pub(super) async fn leave(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    req: HttpRequest,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (id, group_id) = path.into_inner();
    let contact = load(&state, id).await?;
    let how = staff_how(&state, &ctx, &req);
    let mut tx = state.db.begin().await?;
    let removed =
        consent::unsubscribe(&mut tx, contact.id, group_id, &how, state.clock.now_ms()).await?;
    state.db.commit(tx).await?;
    if removed {
        flash(&session, FlashKind::Success, "Removed from the group.");
    }
    Ok(redirect(&format!("/contacts/{}", contact.id)))
}

/// The contact a contact page's address names (404 when there is none); every
/// contact page loads it so.
pub(super) async fn load(state: &AppState, id: i64) -> Result<crate::contacts::Contact, AppError> {
    crate::contacts::find(&state.db, id)
        .await
        .step("loading the contact")?
        .ok_or(AppError::NotFound)
}
