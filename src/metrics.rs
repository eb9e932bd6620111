//! `/metrics` in the Prometheus text format: runs by status (read from the
//! database at scrape time), and histograms kept in this process: lateness of runs,
//! SMTP send latency, HTTP latency; a counter of attempts. No label ever carries a
//! name, an address or a secret.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::web::AppError;

/// A histogram with fixed buckets (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: [AtomicU64; 12],
    sum_micros: AtomicU64,
    total: AtomicU64,
}

const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const LATENESS_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 60.0, 600.0, 3600.0,
];

impl Histogram {
    const fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: [const { AtomicU64::new(0) }; 12],
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// How late runs started after their due time.
pub static RUN_LATENESS: Histogram = Histogram::new(LATENESS_BOUNDS);
/// How long an email took to hand to the mail server.
pub static SMTP_SEND: Histogram = Histogram::new(LATENCY_BOUNDS);
/// How long requests took.
pub static HTTP_REQUEST: Histogram = Histogram::new(LATENCY_BOUNDS);
/// Attempts started.
pub static RUN_ATTEMPTS: AtomicU64 = AtomicU64::new(0);

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
    let statuses: Result<Vec<(String, i64)>, sqlx::Error> =
        sqlx::query_as("SELECT status, COUNT(*) FROM job_runs GROUP BY status")
            .fetch_all(state.db.read())
            .await;
    let _ = writeln!(
        out,
        "# HELP herald_runs Job runs by status.\n# TYPE herald_runs gauge"
    );
    let counts = statuses.unwrap_or_default();
    for status in [
        "pending",
        "running",
        "done",
        "failed",
        "skipped",
        "cancelled",
        "expired",
    ] {
        let n = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "herald_runs{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP herald_run_attempts_total Attempts started by this process.\n# TYPE herald_run_attempts_total counter\nherald_run_attempts_total {}",
        RUN_ATTEMPTS.load(Ordering::Relaxed)
    );
    RUN_LATENESS.write(
        &mut out,
        "herald_run_lateness_seconds",
        "Time from a run's due time to its start.",
    );
    SMTP_SEND.write(
        &mut out,
        "herald_smtp_send_seconds",
        "Time to hand one email to the mail server (or the outbox).",
    );
    HTTP_REQUEST.write(
        &mut out,
        "herald_http_request_seconds",
        "Time to answer an HTTP request.",
    );
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
