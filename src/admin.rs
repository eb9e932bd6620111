//! Admin pages that are not about system users: the audit log and the settings.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::app::AppState;
use crate::audit::{self, Action, Actor};
use crate::settings::{FieldErrors, Settings, SettingsForm};
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, client_ip, flash, redirect, render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(audit_log))
        .route("/settings", web::get().to(settings_page))
        .route("/settings", web::post().to(save_settings));
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

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    ctx: PageContext,
    form: SettingsForm,
    errors: FieldErrors,
    zones: Vec<String>,
}

impl SettingsPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

/// The IANA zone names the time-zone select offers.
pub fn time_zone_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db().available().map(|n| n.to_string()).collect();
    names.sort();
    names
}

async fn settings_page(
    state: web::Data<AppState>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    let settings = Settings::load(&state.db).await?;
    render(
        StatusCode::OK,
        &SettingsPage {
            ctx,
            form: SettingsForm::from(&settings),
            errors: FieldErrors::new(),
            zones: time_zone_names(),
        },
    )
}

async fn save_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    session: Session,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let settings = match form.parse() {
        Ok(s) => s,
        Err(errors) => {
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &SettingsPage {
                    ctx,
                    form,
                    errors,
                    zones: time_zone_names(),
                },
            );
        }
    };
    let now = state.clock.now_ms();
    let ip = client_ip(&req, &state.config.trusted_proxies);
    let mut tx = state.db.begin().await?;
    let changed = settings.save(&mut tx, now).await?;
    if !changed.is_empty() {
        audit::record(
            &mut tx,
            now,
            audit::Entry {
                actor: &Actor::user(me.id, &me.email),
                action: Action::SettingsChanged,
                target: "settings",
                detail: &changed.join(", "),
                ip: &ip,
            },
        )
        .await?;
    }
    tx.commit().await?;
    flash(&session, FlashKind::Success, "Settings saved.");
    Ok(redirect("/admin/settings"))
}
