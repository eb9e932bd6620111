//! The audit log page: who did what, when; newest first, filtered by who acted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::{self};
use crate::state::AppState;
use crate::web::{AppError, PageContext, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(audit_log));
}

const AUDIT_PAGE_SIZE: i64 = 50;

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    ctx: PageContext,
    rows: Vec<audit::Row>,
    page: i64,
    more: bool,
    who: &'static str,
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<i64>,
    #[serde(default)]
    who: String,
}

async fn audit_log(
    state: web::Data<AppState>,
    ctx: PageContext,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let who = audit::ActorFilter::parse(&query.who);
    let (rows, more) = audit::page(&state.db, who, page, AUDIT_PAGE_SIZE).await?;
    render(
        StatusCode::OK,
        &AuditPage {
            ctx,
            rows,
            page,
            more,
            who: who.code(),
        },
    )
}
