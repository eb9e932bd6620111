//! Middleware: security headers, request ids with a log line per request, and the
//! two access scopes (signed-in staff; admins).

use crate::web::Step;
use std::time::Instant;

use actix_session::SessionExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};
use tracing::Instrument;

use crate::audit::{self, Action, Actor};
use crate::auth::users;
use crate::state::AppState;
use crate::web::session_store::USER_ID_KEY;
use crate::web::{AppError, CurrentUser, PageContext, client_ip, local_path, redirect};

/// The Content Security Policy of README's Security in short (plus `data:` images, which Bootstrap's form controls use).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'; img-src 'self' data:";

/// Headers on every response; HSTS only when served over HTTPS.
pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::CACHE_CONTROL, "no-store"));
    if https {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// The id of the request, also sent back as `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Gives each request an id, a tracing span and one log line with status and time.
/// The query string is left out: it may hold tokens. An error that no handler
/// answered (the session middleware's, when its store cannot write) becomes the
/// calm page with 503, not an empty 500.
/// Marks a request that came as HEAD (answered as its GET): a click by HEAD is a
/// machine's.
#[derive(Debug, Clone, Copy)]
pub struct WasHead;

/// A HEAD request is answered as its GET would be, without the body, wherever GET
/// is allowed (RFC 9110 §9.3.2): health checkers that use HEAD saw `/healthz`
/// redirect to the sign-in page. The method is changed before routing; HTTP/1's
/// codec remembers the request was HEAD and sends no body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(WasHead);
    }
    next.call(req).await
}

pub async fn request_id<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let id = crate::types::random_hex(8);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", id = %id, method = %req.method(), path = %req.path());
    let path = req.path().to_string();
    let started = Instant::now();
    let kept = KeptRequest::default();
    req.extensions_mut().insert(kept.clone());
    async move {
        let called = next.call(req).await;
        // Taken in every case: the slot is in the request's own extensions.
        let http = kept.0.borrow_mut().take();
        let mut res = match (called, http) {
            (Ok(res), _) => res.map_into_left_body(),
            (Err(e), Some(http)) => {
                let error = e.as_response_error();
                let answer = if error.status_code().is_server_error() {
                    // The session store could not write (a full disk): one line
                    // per outage, like every request the database fails.
                    crate::web::outage::failed(&e);
                    AppError::Unavailable.error_response()
                } else {
                    error.error_response()
                };
                ServiceResponse::new(http, answer).map_into_right_body()
            }
            (Err(e), None) => return Err(e),
        };
        let status = res.status().as_u16();
        crate::metrics::request_answered(started.elapsed());
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if status == 503 {
            // The cause was logged where it was met, once per outage.
            tracing::debug!(status, ms, "request");
        } else if status >= 500 {
            tracing::error!(status, ms, "request failed");
        } else {
            if !matches!(path.as_str(), "/healthz") && !path.starts_with("/static/") {
                crate::web::outage::answered();
            }
            tracing::info!(status, ms, "request");
        }
        if let Ok(v) = header::HeaderValue::from_str(&id) {
            res.headers_mut()
                .insert(header::HeaderName::from_static("x-request-id"), v);
        }
        Ok(res)
    }
    .instrument(span)
    .await
}

/// The request, kept by [`keep_request`] once it has been answered, so that
/// [`request_id`] can answer an error raised after that (by the session middleware
/// saving the session). A request cannot be cloned before routing: actix-web
/// routes by changing it in place.
#[derive(Clone, Default)]
struct KeptRequest(std::rc::Rc<std::cell::RefCell<Option<actix_web::HttpRequest>>>);

/// Keeps the answered request for [`request_id`]; wraps what the session
/// middleware wraps.
pub async fn keep_request<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, Error> {
    let res = next.call(req).await?;
    if let Some(kept) = res.request().extensions().get::<KeptRequest>() {
        *kept.0.borrow_mut() = Some(res.request().clone());
    }
    Ok(res)
}

/// Session key set when the session began with a temporary password: until a new
/// password is chosen, only the password page and sign-out are reachable.
pub const MUST_CHANGE_KEY: &str = "must_change";

fn state_of(req: &ServiceRequest) -> web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .expect("application state")
}

/// Lets signed-in, enabled system users through and puts [`CurrentUser`] into the
/// request; sends everyone else to the sign-in page.
pub async fn require_staff<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let state = state_of(&req);
    let session = req.get_session();
    let uid: Option<i64> = session.get(USER_ID_KEY).ok().flatten();
    let user = match uid {
        Some(uid) => users::find(&state.db, uid)
            .await
            .step("loading the signed-in user")?,
        None => None,
    };
    let Some(user) = user.filter(|u| !u.disabled) else {
        if uid.is_some() {
            session.purge();
        }
        // Only a path the sign-in would follow back (see `local_path`), with its
        // query (a search, or the token of a link from an email).
        let wanted = req
            .uri()
            .path_and_query()
            .map_or(req.path(), |p| p.as_str());
        let next = (req.method() == Method::GET && req.path() != "/")
            .then(|| local_path(wanted, &state.config.base_url))
            .flatten();
        let to = match next {
            Some(path) => format!(
                "/login?next={}",
                url::form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>()
            ),
            None => "/login".to_string(),
        };
        return Ok(req.into_response(redirect(&to)).map_into_right_body());
    };
    let must_change = session
        .get::<bool>(MUST_CHANGE_KEY)
        .ok()
        .flatten()
        .unwrap_or(false);
    if must_change && !matches!(req.path(), "/password" | "/logout") {
        return Ok(req
            .into_response(redirect("/password"))
            .map_into_right_body());
    }
    req.extensions_mut().insert(CurrentUser {
        id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
    });
    Ok(next.call(req).await?.map_into_left_body())
}

/// Lets admins through; a marketer gets the 403 page (and an audit entry).
pub async fn require_admin<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let user = req.extensions().get::<CurrentUser>().cloned();
    match user {
        Some(u) if u.is_admin() => Ok(next.call(req).await?.map_into_left_body()),
        other => {
            let state = state_of(&req);
            let ip = client_ip(req.request(), &state.config.trusted_proxies);
            let actor = other.map_or_else(
                || Actor::named("anonymous"),
                |u| Actor::user(u.id, &u.email),
            );
            let _ = audit::record_now(
                &state.db,
                state.clock.now_ms(),
                audit::Entry {
                    actor: &actor,
                    action: Action::AccessDenied,
                    target: req.path(),
                    detail: "admin page",
                    ip: &ip,
                },
            )
            .await;
            tracing::warn!(path = req.path(), "access denied: admin page");
            // The page keeps the navigation, so the way back is one click.
            let mut ctx = PageContext::bare();
            ctx.user = req.extensions().get::<CurrentUser>().cloned();
            ctx.csrf = crate::web::csrf::token(&req.get_session());
            if let Ok(s) = crate::settings::Settings::load(&state.db).await {
                ctx.brand = s.brand_name;
            }
            let response: HttpResponse = AppError::Forbidden.page(ctx);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}
