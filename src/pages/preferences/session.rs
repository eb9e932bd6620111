//! The preference center's routes and its session: who is signed in, their
//! credentials, whether they must change their password.

use super::{choices, confirm, my_data, password, sign_in, signup};
use actix_session::Session;
use actix_web::{HttpResponse, web};

use crate::contacts::{self, Contact};
use crate::state::AppState;
use crate::web::middleware::MUST_CHANGE_KEY;
use crate::web::session_store::USER_ID_KEY;
use crate::web::{AppError, redirect};

pub(crate) const KIND: &str = crate::web::session_store::CONTACT_SESSIONS;
/// Requests for a new password per address (and per client) in 15 minutes.
pub(crate) const FORGOT_PER_ADDRESS: i64 = 3;
pub(crate) const FORGOT_PER_IP: i64 = 20;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(choices::preferences_page))
        .route("", web::post().to(choices::save_preferences))
        .route("/", web::get().to(|| async { redirect("/preferences") }))
        .route("/login", web::get().to(sign_in::login_page))
        .route("/login", web::post().to(sign_in::login))
        .route("/forgot", web::get().to(sign_in::forgot_page))
        .route("/forgot", web::post().to(sign_in::forgot))
        .route("/password", web::get().to(password::password_page))
        .route("/password", web::post().to(password::change_password))
        .route("/logout", web::post().to(sign_in::logout))
        .route("/my-data", web::get().to(my_data::download))
        .route("/signup", web::get().to(signup::signup_page))
        .route("/signup", web::post().to(signup::signup))
        .route("/confirm/{token}", web::get().to(confirm::confirm_page))
        .route("/confirm/{token}", web::post().to(confirm::confirm))
        .route(
            "/confirm-again/{group}",
            web::post().to(choices::confirm_again),
        )
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(AppError::NotFound)
        }));
}

#[derive(sqlx::FromRow)]
pub(crate) struct Credentials {
    pub(super) id: i64,
    pub(super) status: String,
    pub(super) password_hash: Option<String>,
    pub(super) temp_hash: Option<String>,
    pub(super) temp_expires_at: Option<i64>,
    pub(super) temp_used_at: Option<i64>,
}

pub(crate) async fn credentials(
    state: &AppState,
    email: &str,
) -> Result<Option<Credentials>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, status, password_hash, temp_hash, temp_expires_at, temp_used_at FROM contacts WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(state.db.read())
    .await
}

/// The signed-in contact, if the session has one that is still active.
pub(crate) async fn signed_in(
    state: &AppState,
    session: &Session,
) -> Result<Option<Contact>, AppError> {
    let Some(id) = session.get::<i64>(USER_ID_KEY).ok().flatten() else {
        return Ok(None);
    };
    let contact = contacts::find(&state.db, id)
        .await?
        .filter(|c| !c.is_blocked());
    if contact.is_none() {
        session.purge();
    }
    Ok(contact)
}

pub(crate) fn must_change(session: &Session) -> bool {
    session
        .get::<bool>(MUST_CHANGE_KEY)
        .ok()
        .flatten()
        .unwrap_or(false)
}
