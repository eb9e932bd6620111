//! What operators and their tools ask: `/healthz` (alive), `/readyz` (database
//! reachable and migrated) and `/metrics` (Prometheus text, behind a bearer token).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use crate::state::AppState;
use crate::web::AppError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Ready when the database answers and every migration is applied.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.db.is_migrated().await {
        Ok(true) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Ok(false) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("migrations pending\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unreachable\n")
        }
    }
}

/// Whether `req` carries `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(req: &HttpRequest, token: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
}

/// `GET /metrics`: only with the configured bearer token (`metrics_token`); without
/// one configured the endpoint does not exist, since run counts tell who is a contact.
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let Some(token) = &state.config.metrics_token else {
        return Err(AppError::NotFound);
    };
    if !bearer_matches(&req, token.expose()) {
        return Ok(HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
            .content_type("text/plain")
            .body("a bearer token is required\n"));
    }
    let mut out = String::new();
    let statuses = crate::scheduler::runs::count_by_status(&state.db).await;
    let _ = writeln!(
        out,
        "# HELP herald_runs Job runs by status.\n# TYPE herald_runs gauge"
    );
    let counts = statuses.unwrap_or_default();
    for status in crate::scheduler::queue::RunStatus::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "herald_runs{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP herald_run_attempts_total Attempts started by this process.\n# TYPE herald_run_attempts_total counter\nherald_run_attempts_total {}",
        crate::metrics::RUN_ATTEMPTS.load(Ordering::Relaxed)
    );
    crate::metrics::RUN_LATENESS.write(
        &mut out,
        "herald_run_lateness_seconds",
        "Time from a run's due time to its start.",
    );
    crate::metrics::SMTP_SEND.write(
        &mut out,
        "herald_smtp_send_seconds",
        "Time to hand one email to the mail server (or the outbox).",
    );
    crate::metrics::HTTP_REQUEST.write(
        &mut out,
        "herald_http_request_seconds",
        "Time to answer an HTTP request.",
    );
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
