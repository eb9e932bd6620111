//! Statistics of a prepared message or an automation: the figures over a chosen
//! range (the last 7, 30, 90 or 365 days), the rates, a chart of the days (drawn
//! on the server), the links, and CSV downloads of the days and of who clicked
//! what (kept only when opens and clicks are tracked per contact).

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::state::AppState;
use crate::stats::{RANGES, Report, Scope};
use crate::web::chart::{Chart, Series};
use crate::web::{AppError, PageContext, Step, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/messages/{id}/stats", web::get().to(message_page))
        .route("/messages/{id}/stats.csv", web::get().to(message_days))
        .route("/messages/{id}/clicks.csv", web::get().to(message_clicks))
        .route("/automations/{id}/stats", web::get().to(automation_page))
        .route(
            "/automations/{id}/stats.csv",
            web::get().to(automation_days),
        )
        .route(
            "/automations/{id}/clicks.csv",
            web::get().to(automation_clicks),
        );
}

#[derive(serde::Deserialize)]
pub struct RangeQuery {
    #[serde(default)]
    days: Option<String>,
}

impl RangeQuery {
    /// The chosen range; 30 days unless one of [`RANGES`] was asked for.
    pub fn days(&self) -> usize {
        self.days
            .as_deref()
            .and_then(|d| d.parse().ok())
            .filter(|d| RANGES.contains(d))
            .unwrap_or(30)
    }
}

const OPENS: Series = Series {
    label: "Unique opens",
    colour: "#1971c2",
};
const CLICKS: Series = Series {
    label: "Unique clicks",
    colour: "#2f9e44",
};

#[derive(Template)]
#[template(path = "stats.html")]
struct Page {
    ctx: PageContext,
    /// "Message" or "Automation".
    what: &'static str,
    name: String,
    /// The page's own address (the range form and the downloads hang off it).
    base: String,
    /// Who clicked what (CSV).
    clicks: String,
    /// Where the message or automation is edited.
    back: String,
    days: usize,
    report: Report,
    chart: Chart,
    /// Whether opens and clicks are kept per contact now ("who clicked what").
    per_contact: bool,
    tracking: crate::settings::Tracking,
}

impl Page {
    fn ranges(&self) -> [usize; 4] {
        RANGES
    }

    fn percent(&self, rate: f64) -> String {
        format!("{rate:.1} %")
    }
}

/// What `scope` is called, and where it is edited; `NotFound` when it is gone.
async fn named(state: &AppState, scope: Scope) -> Result<(&'static str, String, String), AppError> {
    let name = crate::api::stats::name_of(&state.db, scope)
        .await
        .step("loading what the statistics are of")?
        .ok_or(AppError::NotFound)?;
    Ok(match scope {
        Scope::Message(id) => ("Message", name, format!("/messages/{id}")),
        Scope::Automation(id) => ("Automation", name, format!("/automations/{id}")),
    })
}

async fn report(
    state: &AppState,
    ctx: &PageContext,
    scope: Scope,
    days: usize,
) -> Result<Report, AppError> {
    let zone = jiff::tz::TimeZone::get(&ctx.zone).unwrap_or(jiff::tz::TimeZone::UTC);
    crate::stats::report(&state.db, scope, state.clock.now_ms(), days, &zone)
        .await
        .step("counting the statistics")
}

async fn page(
    state: &AppState,
    ctx: PageContext,
    scope: Scope,
    days: usize,
) -> Result<HttpResponse, AppError> {
    let (what, name, back) = named(state, scope).await?;
    let report = report(state, &ctx, scope, days).await?;
    let mut chart = Chart::new(
        format!(
            "Unique opens and clicks per day, last {days} days ({})",
            ctx.zone
        ),
        "No one opened or clicked in these days.",
        report.days.iter().map(|d| d.label.clone()).collect(),
        &[OPENS, CLICKS],
    );
    for (i, d) in report.days.iter().enumerate() {
        chart.add(i, 0, d.unique_opens);
        chart.add(i, 1, d.unique_clicks);
    }
    let chart = chart.with_context("Sent", report.days.iter().map(|d| d.sent).collect());
    let tracking = state.settings.load(&state.db).await?.tracking;
    let base = match scope {
        Scope::Message(id) => format!("/messages/{id}/stats"),
        Scope::Automation(id) => format!("/automations/{id}/stats"),
    };
    let clicks = base.replace("/stats", "/clicks.csv");
    render(
        actix_web::http::StatusCode::OK,
        &Page {
            ctx,
            what,
            name,
            base,
            clicks,
            back,
            days,
            report,
            chart,
            per_contact: tracking == crate::settings::Tracking::PerContact,
            tracking,
        },
    )
}

/// The days of the range as CSV, with the figures of the whole range last.
async fn days_csv(
    state: &AppState,
    ctx: PageContext,
    scope: Scope,
    days: usize,
) -> Result<HttpResponse, AppError> {
    let (what, _, _) = named(state, scope).await?;
    let r = report(state, &ctx, scope, days).await?;
    let f = &r.figures;
    let header = ["date", "sent", "unique_opens", "unique_clicks"].map(String::from);
    let rows = r.days.iter().map(|d| {
        [
            d.date.clone(),
            d.sent.to_string(),
            d.unique_opens.to_string(),
            d.unique_clicks.to_string(),
        ]
    });
    let total = [
        format!("all {days} days"),
        f.sent.to_string(),
        f.unique_opens.to_string(),
        f.unique_clicks.to_string(),
    ];
    let name = format!("{}-{}-stats.csv", what.to_lowercase(), scope.id());
    crate::web::download::csv(
        &name,
        std::iter::once(header)
            .chain(rows)
            .chain(std::iter::once(total)),
    )
}

/// Who clicked what: each person's click kept with their contact, as CSV.
async fn clicks_csv(state: &AppState, scope: Scope) -> Result<HttpResponse, AppError> {
    let (what, _, _) = named(state, scope).await?;
    let clicked = crate::stats::who_clicked(&state.db, scope, 100_000)
        .await
        .step("reading who clicked what")?;
    let header = ["clicked_at", "email", "first_name", "last_name", "link"].map(String::from);
    let rows = clicked.into_iter().map(|c| {
        [
            jiff::Timestamp::from_millisecond(c.at)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            c.email,
            c.first_name,
            c.last_name,
            c.target,
        ]
    });
    let name = format!("{}-{}-clicks.csv", what.to_lowercase(), scope.id());
    crate::web::download::csv(&name, std::iter::once(header).chain(rows))
}

async fn message_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, AppError> {
    page(&state, ctx, Scope::Message(*id), q.days()).await
}

async fn automation_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, AppError> {
    page(&state, ctx, Scope::Automation(*id), q.days()).await
}

async fn message_days(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, AppError> {
    days_csv(&state, ctx, Scope::Message(*id), q.days()).await
}

async fn automation_days(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, AppError> {
    days_csv(&state, ctx, Scope::Automation(*id), q.days()).await
}

async fn message_clicks(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    clicks_csv(&state, Scope::Message(*id)).await
}

async fn automation_clicks(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    clicks_csv(&state, Scope::Automation(*id)).await
}
