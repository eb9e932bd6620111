//! The page staff land on: what runs, what failed, and runs per hour for the last
//! seven days as a server-rendered SVG chart (readable without JavaScript).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::scheduler::queue::RunStatus;
use crate::scheduler::runs::{self, HOUR_MS};
use crate::state::AppState;
use crate::web::{AppError, PageContext, redirect, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { redirect("/dashboard") }))
        .route("/dashboard", web::get().to(dashboard));
}

/// Outcomes charted, bottom to top, with their colours.
const SERIES: [(RunStatus, &str, &str); 4] = [
    (RunStatus::Done, "Done", "#2f9e44"),
    (RunStatus::Failed, "Failed", "#e03131"),
    (RunStatus::Expired, "Expired", "#f08c00"),
    (RunStatus::Skipped, "Skipped", "#adb5bd"),
];
const CHART_HEIGHT: f64 = 120.0;
const BAR_WIDTH: i64 = 4;

pub use crate::web::chart::Rect;

/// The figures at the top of the dashboard.
pub struct Figures {
    pub active: i64,
    pub pending: i64,
    pub running: i64,
    pub done_24h: i64,
    pub failed_24h: i64,
    /// Runs waiting to be tried again after failed attempts (a mail server down).
    pub retrying: crate::scheduler::runs::Retrying,
}

impl Figures {
    /// "Runs are being retried: the latest attempt failed at 03:14 CET (…), failing
    /// since 03:12 CET" (in `zone`), or nothing.
    pub fn retry_note(&self, zone: &str) -> Option<String> {
        let (error, at) = self.retrying.latest.as_ref()?;
        let since = self.retrying.since.unwrap_or(*at);
        Some(format!(
            "{} {} waiting to be tried again. The latest attempt failed at {}: {error}. Attempts have been failing since {}.",
            self.retrying.runs,
            if self.retrying.runs == 1 {
                "run is"
            } else {
                "runs are"
            },
            crate::clock::format_in(*at, zone),
            crate::clock::format_in(since, zone),
        ))
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    ctx: PageContext,
    /// For an admin of a fresh install: the sender and brand to set, as they are.
    sender_setup: Option<crate::settings::Settings>,
    figures: Figures,
    rects: Vec<Rect>,
    totals: Vec<(&'static str, &'static str, i64)>,
    width: i64,
    max: i64,
    /// The days under the chart, oldest first ("Mon 23 Nov").
    days: Vec<String>,
    /// Where the lines between the days go (a day has 23 or 25 hours when the
    /// clocks change).
    day_lines: Vec<i64>,
    /// Every email of the seven days: sent, delivered, opened, clicked.
    email: crate::stats::Figures,
}

impl DashboardPage {
    /// Whether any run finished in the seven days.
    fn empty(&self) -> bool {
        self.totals.iter().all(|(_, _, n)| *n == 0)
    }
}

async fn dashboard(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    let now = state.clock.now_ms();
    let [active, pending, running, done_24h, failed_24h] =
        runs::dashboard_counts(&state.db, now, now - 24 * HOUR_MS).await?;
    let figures = Figures {
        active,
        pending,
        running,
        done_24h,
        failed_24h,
        retrying: runs::retrying(&state.db).await?,
    };
    // Seven whole days in the page's zone, today last: the hour each day starts
    // (from the hourly counts, which are kept per UTC hour; a zone half an hour off
    // UTC draws each hour in the bar it started in).
    let zone = jiff::tz::TimeZone::get(&ctx.zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let starts: Vec<i64> = crate::clock::day_starts(now, &zone, 7)
        .into_iter()
        .map(|ms| ms.div_euclid(HOUR_MS))
        .collect();
    let first_hour = starts[0];
    let hours = starts[7] - first_hour;
    let rows = runs::finished_per_hour(&state.db, first_hour).await?;
    let mut buckets = vec![[0i64; SERIES.len()]; hours as usize];
    for (hour, status, n) in rows {
        let (Some(i), Some(s)) = (
            usize::try_from(hour - first_hour)
                .ok()
                .filter(|i| *i < hours as usize),
            SERIES.iter().position(|(s, _, _)| *s == status),
        ) else {
            continue;
        };
        buckets[i][s] += n;
    }
    let max = buckets
        .iter()
        .map(|b| b.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = CHART_HEIGHT / max as f64;
    let mut rects = Vec::new();
    for (i, bucket) in buckets.iter().enumerate() {
        let mut top = CHART_HEIGHT;
        let hour = crate::clock::format_in((first_hour + i as i64) * HOUR_MS, &ctx.zone);
        for (s, n) in bucket.iter().enumerate().filter(|(_, n)| **n > 0) {
            let h = *n as f64 * scale;
            top -= h;
            rects.push(Rect {
                x: i as i64 * BAR_WIDTH,
                y: format!("{top:.2}"),
                height: format!("{h:.2}"),
                fill: SERIES[s].2,
                title: format!("{hour}: {n} {}", SERIES[s].1.to_lowercase()),
            });
        }
    }
    let days = starts[..7]
        .iter()
        .map(|h| crate::clock::day_label(h * HOUR_MS, &zone))
        .collect();
    let day_lines = starts[1..7]
        .iter()
        .map(|h| (h - first_hour) * BAR_WIDTH)
        .collect();
    let email =
        crate::stats::all_figures(&state.db, starts[0] * HOUR_MS, starts[7] * HOUR_MS).await?;
    let settings = crate::settings::Settings::load(&state.db).await?;
    let sender_setup = (ctx.is_admin() && crate::pages::admin::settings::sender_unset(&settings))
        .then_some(settings);
    let totals = SERIES
        .iter()
        .enumerate()
        .map(|(s, (_, label, colour))| (*label, *colour, buckets.iter().map(|b| b[s]).sum()))
        .collect();
    render(
        StatusCode::OK,
        &DashboardPage {
            sender_setup,
            ctx,
            figures,
            email,
            rects,
            totals,
            width: hours * BAR_WIDTH,
            max,
            days,
            day_lines,
        },
    )
}
