//! One rule for what a request may carry, checked before any handler runs: no NUL
//! and no other C0 control character in the path, the query string or a URL-encoded
//! form — except tab, and CR and LF in forms, where multi-line text is allowed. Such
//! bytes are never what a person typed; PostgreSQL refuses NUL in text outright, so
//! without this rule the same input would be stored on SQLite and fail on
//! PostgreSQL. Fields that must be one line check that themselves.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpResponse, ResponseError};

use crate::web::AppError;

/// URL-encoded forms larger than this are refused (the CSRF check uses the same).
pub const MAX_FORM_BYTES: usize = 1024 * 1024;

/// Whether a decoded byte may appear: printable text and tab, and in multi-line
/// text also CR and LF.
fn allowed(byte: u8, multi_line: bool) -> bool {
    byte >= 0x20 || byte == b'\t' || (multi_line && matches!(byte, b'\r' | b'\n'))
}

/// Whether URL-encoded `raw` (a query string or form body) decodes to allowed bytes.
pub fn encoded_text_is_clean(raw: &[u8], multi_line: bool) -> bool {
    let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
    let mut i = 0;
    while i < raw.len() {
        let mut byte = raw[i];
        // An escape decodes to its byte; a `%` not followed by two hex digits stays
        // a `%`, as the form parser keeps it.
        if byte == b'%'
            && let (Some(h), Some(l)) = (hex(raw.get(i + 1)), hex(raw.get(i + 2)))
        {
            byte = (h * 16 + l) as u8;
            i += 2;
        }
        if !allowed(byte, multi_line) {
            return false;
        }
        i += 1;
    }
    true
}

fn refuse<B>(req: ServiceRequest, what: &str) -> ServiceResponse<EitherBody<B>> {
    let message = format!(
        "The {what} holds a control character (such as a NUL byte) that Herald does not accept. Remove it and try again."
    );
    // The API answers in its own language: problem details (RFC 9457).
    let response = if req.path().starts_with("/api/") {
        HttpResponse::BadRequest()
            .content_type("application/problem+json")
            .body(
                serde_json::json!({
                    "type": "about:blank", "title": "Bad request", "status": 400, "detail": message,
                })
                .to_string(),
            )
    } else {
        AppError::BadRequest(message).error_response()
    };
    req.into_response(response).map_into_right_body()
}

/// A body must arrive within this long, plus a second for every
/// [`BODY_MIN_RATE`] bytes it announces: a client that sends a large
/// `Content-Length` and then a byte every few seconds holds a connection no longer.
const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);
/// The slowest upload Herald waits for, in bytes a second (a 50 MB import may take
/// 8 minutes).
const BODY_MIN_RATE: u64 = 100 * 1024;

/// Puts a deadline on reading `req`'s body (see [`BODY_DEADLINE`]).
fn with_deadline(req: &mut ServiceRequest) {
    use actix_web::HttpMessage;
    use futures_util::StreamExt;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if announced.unwrap_or(0) == 0 && !chunked {
        return;
    }
    let deadline = tokio::time::Instant::now()
        + BODY_DEADLINE
        + std::time::Duration::from_secs(announced.unwrap_or(0) / BODY_MIN_RATE);
    let body = futures_util::stream::unfold(Some(req.take_payload()), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(body))),
            Ok(None) => None,
            Err(_) => {
                let late = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                );
                Some((Err(actix_web::error::PayloadError::Io(late)), None))
            }
        }
    });
    // Fused: readers (multipart) may ask again after the end.
    req.set_payload(actix_web::dev::Payload::Stream {
        payload: Box::pin(body.fuse()),
    });
}

/// The middleware: the input rule, and a deadline for every request body.
pub async fn reject_control_characters<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    with_deadline(&mut req);
    let path_clean = encoded_text_is_clean(req.uri().path().as_bytes(), false);
    if !path_clean || !encoded_text_is_clean(req.query_string().as_bytes(), false) {
        return Ok(refuse(req, "address"));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let body = match req.extract::<Bytes>().await {
            Ok(b) if b.len() <= MAX_FORM_BYTES => b,
            read => {
                let message = match read {
                    Err(e) if e.to_string().contains("did not arrive in time") => {
                        "The form did not arrive in time.".to_string()
                    }
                    _ => "The form is larger than 1 MiB.".to_string(),
                };
                let response = AppError::BadRequest(message);
                return Ok(req
                    .into_response(response.error_response())
                    .map_into_right_body());
            }
        };
        if !encoded_text_is_clean(&body, true) {
            return Ok(refuse(req, "form"));
        }
        req.set_payload(body.into());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_found_encoded_or_not() {
        assert!(encoded_text_is_clean(b"q=ann+lee&x=%C3%A9", false));
        assert!(encoded_text_is_clean(b"text=a%0D%0Ab%09c", true));
        assert!(!encoded_text_is_clean(b"text=a%0D%0Ab", false));
        assert!(encoded_text_is_clean(b"next=%2F%09%2Fevil", false));
        for bad in [
            &b"q=a%00b"[..],
            b"q=a%0bb",
            b"q=%1B[31m",
            b"q=a\x01b",
            b"e=a%00",
        ] {
            assert!(!encoded_text_is_clean(bad, true), "{bad:?}");
        }
        // A lone percent sign is text, not an escape.
        assert!(encoded_text_is_clean(b"q=100%", false));
        assert!(encoded_text_is_clean(b"q=%zz", false));
        assert!(!encoded_text_is_clean(b"q=%z%00", false));
    }
}
