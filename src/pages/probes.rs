//! What operators and their tools ask: `/healthz` (alive), `/readyz` (database
//! reachable and migrated) and `/metrics` (Prometheus text, behind a bearer token).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
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

/// The last write `/readyz` made, kept for a second: the probe is public, and a
/// flood of it must not become a flood of writes (on SQLite, through its one
/// writer).
#[derive(Default)]
pub struct WriteProbe {
    last: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

impl WriteProbe {
    /// Whether a write works now (or did within the last second); the cause if not.
    async fn check(&self, state: &AppState) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = &*last
            && at.elapsed() < crate::cache::FRESH
        {
            return result.clone();
        }
        let result = sqlx::query(
            "INSERT INTO write_probe (id, checked_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(state.clock.now_ms())
        .execute(state.db.write())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
        *last = Some((std::time::Instant::now(), result.clone()));
        result
    }
}

/// Ready when the database answers, every migration is applied and a write works.
async fn readyz(state: web::Data<AppState>, probe: web::Data<WriteProbe>) -> HttpResponse {
    let unavailable = |why: String| {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body(why)
    };
    match state.db.is_migrated().await {
        Ok(true) => {}
        Ok(false) => return unavailable("migrations pending\n".into()),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            return unavailable("database unreachable\n".into());
        }
    }
    match probe.check(&state).await {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: the database cannot write");
            unavailable(format!("the database cannot write: {e}\n"))
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
    if !bearer_matches(&req, token.expose_secret()) {
        return Ok(HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\""))
            .content_type("text/plain")
            .body("a bearer token is required\n"));
    }
    let counts = crate::scheduler::runs::count_by_status(&state.db)
        .await
        .unwrap_or_default();
    let runs = crate::scheduler::queue::RunStatus::ALL.map(|status| {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        (status.code(), n)
    });
    let out = crate::metrics::render(runs);
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
