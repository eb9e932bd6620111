//! CSRF protection in one place (README, Security in short): every state-changing request outside
//! the API must come from this site (`Origin` / `Sec-Fetch-Site`) and carry the
//! session's synchronizer token, in the form field `csrf_token` (URL-encoded forms)
//! or the `X-CSRF-Token` header or `csrf_token` query parameter (multipart uploads,
//! scripts). A handler cannot forget it: the middleware runs before all of them.

use actix_session::{Session, SessionExt};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{Error, ResponseError};
use subtle::ConstantTimeEq;

use crate::audit::{self, Action, Actor};
use crate::state::AppState;
use crate::web::input::MAX_FORM_BYTES;
use crate::web::{AppError, client_ip};

const SESSION_KEY: &str = "csrf";
pub const FIELD: &str = "csrf_token";

/// The session's token, created on first use.
pub fn token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(SESSION_KEY) {
        return t;
    }
    let t = crate::types::random_hex(32);
    let _ = session.insert(SESSION_KEY, &t);
    t
}

/// A fresh token (after sign-in, so a token seen before cannot be replayed).
pub fn rotate(session: &Session) {
    session.remove(SESSION_KEY);
    token(session);
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request comes from a page of this site.
fn same_origin(req: &ServiceRequest, base: &url::Url) -> bool {
    let headers = req.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if origin == base.origin().ascii_serialization() {
            return true;
        }
        let Ok(parsed) = url::Url::parse(origin) else {
            return false;
        };
        let authority = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return false,
        };
        return headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| host.eq_ignore_ascii_case(&authority));
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        // Neither header (old browsers, scripts): the token alone decides.
        None => true,
    }
}

fn form_token(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == FIELD)
        .map(|(_, v)| v.into_owned())
}

fn query_token(query: &str) -> Option<String> {
    form_token(query.as_bytes())
}

/// The middleware.
pub async fn protect<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    if is_safe(req.method()) || req.path().starts_with("/api/") {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("application state");
    let expected: Option<String> = req.get_session().get(SESSION_KEY).ok().flatten();
    let mut presented = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query_token(req.query_string()));
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    let mut too_large = false;
    if presented.is_none() && is_form {
        let body = req.extract::<Bytes>().await.map_err(|_| ()).and_then(|b| {
            if b.len() > MAX_FORM_BYTES {
                Err(())
            } else {
                Ok(b)
            }
        });
        match body {
            Ok(body) => {
                presented = form_token(&body);
                req.set_payload(body.into());
            }
            Err(()) => too_large = true,
        }
    }
    let origin_ok = same_origin(&req, &state.config.base_url);
    let token_ok = match (&expected, &presented) {
        (Some(e), Some(p)) => bool::from(e.as_bytes().ct_eq(p.as_bytes())),
        _ => false,
    };
    if too_large {
        let response =
            AppError::BadRequest("The form is larger than 1 MiB.".into()).error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    if origin_ok && token_ok {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let reason = if !origin_ok {
        "foreign origin"
    } else if presented.is_none() {
        "token missing"
    } else {
        "token mismatch"
    };
    let ip = client_ip(req.request(), &state.config.trusted_proxies);
    tracing::warn!(reason, path = req.path(), %ip, "form rejected (CSRF check)");
    let actor = match req
        .get_session()
        .get::<i64>(crate::web::session_store::USER_ID_KEY)
    {
        Ok(Some(id)) => Actor {
            id: Some(id),
            label: format!("system user #{id}"),
        },
        _ => Actor::named("anonymous"),
    };
    let _ = audit::record_now(
        &state.db,
        state.clock.now_ms(),
        audit::Entry {
            actor: &actor,
            action: Action::CsrfRejected,
            target: req.path(),
            detail: reason,
            ip: &ip,
        },
    )
    .await;
    let response = AppError::Csrf.error_response();
    Ok(req.into_response(response).map_into_right_body())
}
