//! "Download my data": a signed-in contact's own data as one JSON file (the
//! right of access), the same document staff and the API export.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::audit::{self, Action, Actor};
use crate::state::AppState;
use crate::web::{AppError, client_ip, redirect};

use super::signed_in;

pub(super) async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
) -> Result<HttpResponse, AppError> {
    let Some(contact) = signed_in(&state, &session).await? else {
        return Ok(redirect("/preferences/login"));
    };
    let entry = audit::Entry {
        actor: &Actor::contact(&contact.email),
        action: Action::ContactExported,
        target: "preference center",
        detail: "",
        ip: &client_ip(&req, &state.config.trusted_proxies),
    };
    let data = crate::contacts::export::audited(&state.db, contact.id, state.clock.now_ms(), entry)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(crate::web::download::json(
        &crate::contacts::export::file_name(contact.id),
        crate::contacts::export::to_bytes(&data),
    ))
}
