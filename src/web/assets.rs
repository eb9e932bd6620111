//! Static files, compiled into the binary so that `herald` is one file.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::web::AppError;

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "bootstrap.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/bootstrap.min.css"),
    ),
    (
        "herald.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/herald.css"),
    ),
    (
        "herald.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/herald.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
];

/// `GET /static/{file}`. Links carry `?v=<version>`, so a day of caching is safe.
pub async fn serve(file: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, content_type, body) = FILES
        .iter()
        .find(|(name, _, _)| *name == file.as_str())
        .ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(*body))
}
