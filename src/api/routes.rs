//! The API's routes: `/api/v1` behind a key, and the OpenAPI document.

use super::{
    auth, contacts, event_writer, events, feedback, limit, openapi, problem, stats, suppressions,
    try_it_endpoint,
};
use actix_web::middleware::from_fn;
use actix_web::web;

/// Mounts `/api/v1`: JSON only, behind a key, no session and no CSRF token; and the
/// OpenAPI document, open to all.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(openapi::document));
    // Providers' webhooks prove themselves with their own credentials, not a key.
    cfg.service(
        web::scope("/api/v1/feedback")
            .app_data(web::PayloadConfig::new(1024 * 1024))
            .app_data(web::PathConfig::default().error_handler(|_, _| {
                problem::Problem::new(
                    actix_web::http::StatusCode::NOT_FOUND,
                    "Not found",
                    "There is nothing at this address.",
                )
                .into()
            }))
            .route("/{provider}", web::post().to(feedback::post)),
    );
    cfg.service(
        web::scope("/api/v1")
            .app_data(web::PathConfig::default().error_handler(|_, _| {
                problem::Problem::new(
                    actix_web::http::StatusCode::NOT_FOUND,
                    "Not found",
                    "There is nothing at this address.",
                )
                .into()
            }))
            .app_data(
                web::JsonConfig::default()
                    .limit(64 * 1024)
                    .error_handler(problem::json_error),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                problem::Problem::new(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "Invalid query",
                    format!("The query string could not be read: {e}."),
                )
                .into()
            }))
            .wrap(from_fn(limit::limit))
            .wrap(from_fn(auth::require_key))
            .route("/events", web::post().to(event_writer::post_event))
            .service(
                web::resource("/events/batch")
                    .app_data(
                        web::JsonConfig::default()
                            .limit(4 * 1024 * 1024)
                            .error_handler(problem::json_error),
                    )
                    .route(web::post().to(events::post_batch)),
            )
            .route("/contacts", web::post().to(contacts::post_contact))
            .route("/contacts/{id}", web::get().to(contacts::get_contact))
            .route(
                "/contacts/{id}/export",
                web::get().to(contacts::export_contact),
            )
            .route("/runs/{id}", web::get().to(contacts::get_run))
            .route("/suppressions", web::get().to(suppressions::list))
            .route("/suppressions", web::post().to(suppressions::add))
            .route(
                "/suppressions/{address}",
                web::delete().to(suppressions::remove),
            )
            .route(
                "/automations/{id}/try",
                web::get().to(try_it_endpoint::try_automation),
            )
            .route("/messages/{id}/stats", web::get().to(stats::message))
            .route("/automations/{id}/stats", web::get().to(stats::automation)),
    );
}
