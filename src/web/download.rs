//! Files to download: CSV with a header row, JSON documents.

use actix_web::HttpResponse;
use actix_web::http::header;

use super::AppError;

/// `rows` (the header first) as a CSV attachment named `filename`.
pub fn csv<R, F>(
    filename: &str,
    rows: impl IntoIterator<Item = R>,
) -> Result<HttpResponse, AppError>
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let failed =
        |e: &dyn std::fmt::Display| AppError::Unexpected(anyhow::anyhow!("writing the CSV: {e}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    for row in rows {
        out.write_record(row).map_err(|e| failed(&e))?;
    }
    let body = out.into_inner().map_err(|e| failed(&e))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(body))
}

/// `body` (JSON) as an attachment named `filename`; never cached.
pub fn json(filename: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}
