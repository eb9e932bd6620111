//! The page staff land on after signing in.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::web::{AppError, PageContext, redirect, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| async { redirect("/dashboard") }))
        .route("/dashboard", web::get().to(dashboard));
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    ctx: PageContext,
}

async fn dashboard(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(StatusCode::OK, &DashboardPage { ctx })
}
