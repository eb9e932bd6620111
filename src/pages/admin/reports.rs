//! The admin page of bounces and complaints that matched no email Herald sent:
//! kept, with the start of each message, for an admin to look at.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::feedback::store::{self, Report};
use crate::state::AppState;
use crate::web::{AppError, PageContext, Step, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/reports", web::get().to(list))
        .route("/reports/{id}", web::get().to(show));
}

/// Reports the list shows.
const SHOWN: i64 = 100;

#[derive(Template)]
#[template(path = "admin/reports.html")]
struct ListPage {
    ctx: PageContext,
    reports: Vec<Report>,
    total: i64,
}

async fn list(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    let (reports, total) = store::unmatched(&state.db, SHOWN)
        .await
        .step("reading the unmatched reports")?;
    render(
        StatusCode::OK,
        &ListPage {
            ctx,
            reports,
            total,
        },
    )
}

#[derive(Template)]
#[template(path = "admin/report.html")]
struct ShowPage {
    ctx: PageContext,
    report: Report,
}

async fn show(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let report = store::find(&state.db, *id)
        .await
        .step("reading the report")?
        .ok_or(AppError::NotFound)?;
    render(StatusCode::OK, &ShowPage { ctx, report })
}
