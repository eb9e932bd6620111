//! What every page shares: the error page (`AppError`), rendering, redirects and
//! flash messages, the signed-in user, the page context, audited changes and the
//! client's address.

use super::{csrf, outage};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{
    FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, dev::Payload, web,
};
use askama::Template;
use serde::{Deserialize, Serialize};

use crate::auth::users::Role;
use crate::state::AppState;

/// Everything a handler can fail with. "The user's input is wrong" is not here: it
/// is a page with messages next to the fields, returned as `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("form rejected")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    /// Something below the pages failed (the session could not be stored: the
    /// database is away or full); the person may try again in a moment.
    #[error("unavailable")]
    Unavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    /// A database error at `step` ("loading the automation"): a calm 503 when the
    /// database does not answer; otherwise unexpected, and the log line behind the
    /// 500 page names the step before the cause.
    pub fn at(step: &str, e: sqlx::Error) -> Self {
        Self::of(e, Some(step))
    }

    /// A database error, named by its step when one is known.
    fn of(e: sqlx::Error, step: Option<&str>) -> Self {
        if outage::is_outage(&e) {
            outage::failed(&e);
            return Self::Unavailable;
        }
        let e = anyhow::Error::new(e);
        Self::Unexpected(match step {
            Some(step) => e.context(format!("while {step}")),
            None => e,
        })
    }
}

/// Names the step a database call is, for the log line of an unexpected error:
/// `store::find(&db, id).await.step("loading the automation")?`.
pub trait Step<T> {
    fn step(self, step: &str) -> Result<T, AppError>;
}

impl<T> Step<T> for Result<T, sqlx::Error> {
    fn step(self, step: &str) -> Result<T, AppError> {
        self.map_err(|e| AppError::at(step, e))
    }
}

impl From<sqlx::Error> for AppError {
    /// A database that does not answer is a calm 503 (logged once per outage);
    /// any other database error is unexpected.
    fn from(e: sqlx::Error) -> Self {
        Self::of(e, None)
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::Unexpected(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: PageContext,
    title: &'a str,
    message: &'a str,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden | AppError::Csrf => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.page(PageContext::bare())
    }
}

impl AppError {
    /// The error page, with `ctx`'s navigation when the person is known.
    pub fn page(&self, ctx: PageContext) -> HttpResponse {
        let (title, message): (&str, &str) = match self {
            AppError::NotFound => ("Page not found", "There is nothing at this address."),
            AppError::Forbidden => (
                "Not allowed",
                "Your role does not give access to this page. Ask an admin if you need it.",
            ),
            AppError::Csrf => (
                "Form expired",
                "This form has expired or did not come from this site. Go back, reload the page and try again.",
            ),
            AppError::BadRequest(msg) => ("Bad request", msg.as_str()),
            AppError::Unavailable => (
                "Try again in a moment",
                "Herald cannot save anything right now (its database is not answering or has no room). Nothing you entered is lost; try again in a moment.",
            ),
            AppError::Unexpected(e) => {
                // The cause chain at error level; the backtrace (in Debug) at debug.
                tracing::error!(error = %format!("{e:#}"), "unexpected error");
                tracing::debug!(error = ?e, "unexpected error, with its backtrace");
                (
                    "Something went wrong",
                    "Herald could not finish this request. Nothing you entered is lost; try again in a moment. The error has been logged.",
                )
            }
        };
        let page = ErrorPage {
            ctx,
            title,
            message,
        };
        match page.render() {
            Ok(body) => HttpResponse::build(self.status_code())
                .content_type("text/html; charset=utf-8")
                .body(body),
            Err(_) => HttpResponse::build(self.status_code()).body(title.to_string()),
        }
    }
}

/// Renders a template as an HTML response with the given status.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}

/// A page asking to confirm a destructive action (a POST to `action`).
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub ctx: PageContext,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: &'static str,
    pub cancel: String,
}

impl ConfirmPage {
    pub fn render(self) -> Result<HttpResponse, AppError> {
        render(StatusCode::OK, &self)
    }
}

/// The path (with query) `next` names when it is a page of this site: it must start
/// with `/`, hold no control character or backslash, and, resolved against `base`,
/// stay on `base`'s origin and start with a single `/`. Anything else is `None` (the caller's fallback), so a
/// `?next=` can never send anyone to another site, nor break a header.
pub fn local_path(next: &str, base: &url::Url) -> Option<String> {
    if !next.starts_with('/') || next.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    let resolved = base.join(next).ok()?;
    if resolved.origin() != base.origin() {
        return None;
    }
    // The serialised URL is percent-encoded: always a valid header value. Dot
    // segments resolve away (`/.//evil.example` is `//evil.example`): what is left
    // must still be one `/` followed by neither `/` nor `\`, or a browser reads
    // it as another site.
    let path = &resolved[url::Position::BeforePath..];
    let mut chars = path.chars();
    (chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\')))
        .then(|| path.to_string())
}

/// 303 See Other: the answer to a successful POST (post-redirect-get).
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// How a flash message looks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum FlashKind {
    Success,
    Info,
    Error,
}

/// A message shown once on the next page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub text: String,
}

impl Flash {
    /// The Bootstrap alert class.
    pub fn class(&self) -> &'static str {
        match self.kind {
            FlashKind::Success => "alert-success",
            FlashKind::Info => "alert-info",
            FlashKind::Error => "alert-danger",
        }
    }
}

const FLASH_KEY: &str = "flash";

/// Queues a message for the next page this session sees.
pub fn flash(session: &Session, kind: FlashKind, text: impl Into<String>) {
    let mut all: Vec<Flash> = session.get(FLASH_KEY).ok().flatten().unwrap_or_default();
    all.push(Flash {
        kind,
        text: text.into(),
    });
    let _ = session.insert(FLASH_KEY, all);
}

/// The signed-in system user, put into the request by the staff scope.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(
            req.extensions()
                .get::<CurrentUser>()
                .cloned()
                .ok_or(AppError::Forbidden),
        )
    }
}

/// What the layout needs on every page.
#[derive(Debug, Clone)]
pub struct PageContext {
    pub user: Option<CurrentUser>,
    pub csrf: String,
    pub flashes: Vec<Flash>,
    pub brand: String,
    pub path: String,
    /// The zone every time on a staff page is shown in: Settings' default zone.
    pub zone: String,
}

impl PageContext {
    /// The signed-in staff member as records name them: "Ada Lovelace
    /// <ada@example.com>" (the address alone when there is no name).
    pub fn staff_label(&self) -> String {
        match &self.user {
            Some(u) if !u.name.trim().is_empty() => format!("{} <{}>", u.name.trim(), u.email),
            Some(u) => u.email.clone(),
            None => String::new(),
        }
    }

    /// For pages rendered outside a request's normal flow (error pages).
    pub fn bare() -> Self {
        Self {
            user: None,
            csrf: String::new(),
            flashes: Vec::new(),
            brand: "Herald".into(),
            path: String::new(),
            zone: "UTC".into(),
        }
    }

    /// A stored time in the page's zone, named: `2026-11-27 15:05 CET`.
    pub fn time(&self, ms: &i64) -> String {
        crate::clock::format_in(*ms, &self.zone)
    }

    /// [`Self::time`] of a time that may not have happened: "never".
    pub fn time_or_never(&self, ms: &Option<i64>) -> String {
        ms.map_or_else(|| "never".into(), |ms| self.time(&ms))
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(CurrentUser::is_admin)
    }

    /// `active` when the current page is under `prefix` (for the navigation).
    pub fn nav(&self, prefix: &str) -> &'static str {
        if self.path.starts_with(prefix) {
            "active"
        } else {
            ""
        }
    }
}

impl FromRequest for PageContext {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let user = req.extensions().get::<CurrentUser>().cloned();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let path = req.path().to_string();
        Box::pin(async move {
            let state = state.ok_or_else(|| anyhow::anyhow!("application state missing"))?;
            let settings = crate::settings::Settings::load(&state.db)
                .await
                .step("reading the settings for the page")?;
            // Only a session holding flashes is changed: `remove` marks any session
            // changed, and a changed session is written back — a write on every page
            // view, which on SQLite waits for the single writer.
            let flashes = if session.contains_key(FLASH_KEY) {
                session
                    .remove_as::<Vec<Flash>>(FLASH_KEY)
                    .and_then(Result::ok)
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            Ok(PageContext {
                user,
                csrf: csrf::token(&session),
                flashes,
                brand: settings.brand_name,
                path,
                zone: settings.default_time_zone,
            })
        })
    }
}

/// Runs `change` and its audit entry (by the signed-in user `me`) in one
/// transaction: both are stored, or neither.
pub async fn audited_change(
    state: &AppState,
    req: &HttpRequest,
    me: &CurrentUser,
    action: crate::audit::Action,
    target: &str,
    detail: &str,
    change: impl AsyncFnOnce(&mut crate::db::Tx, i64) -> Result<(), sqlx::Error>,
) -> Result<(), AppError> {
    let now = state.clock.now_ms();
    let ip = client_ip(req, &state.config.trusted_proxies);
    // The step an unexpected error names: the change the entry would record.
    let step = format!("saving \"{}\" ({target})", action.label());
    let mut tx = state.db.begin().await.step(&step)?;
    change(&mut tx, now).await.step(&step)?;
    crate::audit::record(
        &mut tx,
        now,
        crate::audit::Entry {
            actor: &crate::audit::Actor::user(me.id, &me.email),
            action,
            target,
            detail,
            ip: &ip,
        },
    )
    .await
    .step(&step)?;
    // Through the database handle: the change may have enqueued runs.
    state.db.commit(tx).await.step(&step)?;
    Ok(())
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(req: &HttpRequest, trusted: &[IpAddr]) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let Some(peer) = peer else {
        return "unknown".into();
    };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(&peer)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(f) = forwarded {
            r = r.insert_header(("x-forwarded-for", f));
        }
        r.to_http_request()
    }

    #[test]
    fn next_stays_on_this_site() {
        let base = url::Url::parse("http://127.0.0.1:8080/").unwrap();
        let ok = |n: &str| local_path(n, &base);
        assert_eq!(ok("/admin/audit").as_deref(), Some("/admin/audit"));
        assert_eq!(ok("/contacts?q=ann").as_deref(), Some("/contacts?q=ann"));
        for bad in [
            "",
            "dashboard",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example/",
            "/\t\\evil.example",
            "/\n/evil.example",
            "/a\rb",
            "/a\u{0}b",
            "/a\u{b}b",
            "/a\u{7f}b",
            "https://evil.example/",
            "/%09/evil.example",
            "/ /evil.example",
            "/.//evil.example/p",
            "/..//evil.example/p",
            "/%2e%2e//evil.example/p",
            "/%2e//evil.example/p",
            "/a/..//evil.example",
        ] {
            let got = ok(bad);
            assert!(
                got.as_deref()
                    .is_none_or(|p| p.starts_with('/') && !p.starts_with("//")),
                "{bad:?} gave {got:?}"
            );
        }
        for bad in [
            "/.//evil.example/p",
            "/..//evil.example/p",
            "/%2e%2e//evil.example/p",
            "/a/..//evil.example",
            "//evil.example",
            "/\t/evil.example/",
            "/\n/x",
            "/a\u{7f}b",
            "/\\x",
        ] {
            assert_eq!(ok(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        // Not from a proxy: the header is ignored, whatever it says.
        assert_eq!(
            client_ip(&request("203.0.113.9:5000", Some("1.2.3.4")), &[proxy]),
            "203.0.113.9"
        );
        // From the proxy: the last address that is not a trusted proxy.
        assert_eq!(
            client_ip(
                &request("10.0.0.1:5000", Some("6.6.6.6, 198.51.100.7")),
                &[proxy]
            ),
            "198.51.100.7"
        );
        assert_eq!(
            client_ip(
                &request("10.0.0.1:5000", Some("198.51.100.7, 10.0.0.1")),
                &[proxy]
            ),
            "198.51.100.7"
        );
        // From the proxy without a usable header: the proxy itself.
        assert_eq!(
            client_ip(&request("10.0.0.1:5000", Some("garbage")), &[proxy]),
            "10.0.0.1"
        );
        assert_eq!(client_ip(&request("10.0.0.1:5000", None), &[]), "10.0.0.1");
    }
}
