//! Errors of the JSON API as RFC 9457 problem details, naming the field when one
//! is wrong. Never a page, never a database message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// One problem answer (RFC 9457).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
        }
    }

    /// 422: `field` is wrong, and `detail` says how.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid field", detail)
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Send a valid API key as `Authorization: Bearer <key>` (created by an admin under API keys).",
        )
    }
}

impl Problem {
    /// The same problem about item `index` of a batch.
    pub fn in_item(mut self, index: usize) -> Self {
        self.field = Some(match self.field {
            Some(f) => format!("events[{index}].{f}"),
            None => format!("events[{index}]"),
        });
        self.detail = format!("Event {index}: {}", self.detail);
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        if self.status == 401 {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(self)
    }
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        if crate::web::outage::is_outage(&e) {
            crate::web::outage::failed(&e);
        } else {
            tracing::error!(error = %e, "API: database error");
        }
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "Herald could not finish this request; try again in a moment.",
        )
    }
}

/// The JSON body error handler: bad JSON, wrong types, missing fields, too large,
/// wrong content type — all 4xx problems.
pub fn json_error(
    e: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let problem = match &e {
        E::ContentType => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "Send JSON with `Content-Type: application/json`.",
        ),
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too large",
            format!("The body is larger than {limit} bytes."),
        ),
        E::Deserialize(d) => Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
            format!("The body could not be read: {d}."),
        ),
        other => Problem::new(StatusCode::BAD_REQUEST, "Bad request", other.to_string()),
    };
    problem.into()
}
