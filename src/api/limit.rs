//! A rate limit per API key (Settings: calls per minute), counted in fixed windows
//! of a minute in this process; past it, 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};

use crate::api::keys::ApiKey;
use crate::api::problem::Problem;
use crate::state::AppState;

/// Calls per key in the current minute.
#[derive(Default)]
pub struct Limiter {
    windows: Mutex<HashMap<i64, (i64, i64)>>,
}

impl Limiter {
    /// Counts a call of `key` at `now_ms`; the seconds to wait when over `limit`.
    pub fn count(&self, key: i64, now_ms: i64, limit: i64) -> Option<i64> {
        let minute = now_ms / 60_000;
        let mut windows = self.windows.lock().expect("rate limit");
        let entry = windows.entry(key).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        (entry.1 > limit).then(|| 60 - (now_ms / 1000) % 60)
    }
}

pub async fn limit<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("application state");
    let limiter = req
        .app_data::<web::Data<Limiter>>()
        .cloned()
        .expect("rate limiter");
    let key = req.extensions().get::<ApiKey>().map(|k| k.id);
    if let Some(key) = key {
        let per_minute = state
            .settings
            .load(&state.db)
            .await
            .map_err(Problem::from)?
            .api_calls_per_minute;
        if let Some(wait) = limiter.count(key, state.clock.now_ms(), per_minute) {
            let mut response = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                format!("This key may make {per_minute} calls a minute; try again in {wait} s."),
            )
            .error_response();
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(wait),
            );
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_calls_per_minute_then_waits() {
        let l = Limiter::default();
        let t = 120_000 + 45_000;
        assert_eq!((0..3).filter_map(|_| l.count(1, t, 3)).count(), 0);
        assert_eq!(l.count(1, t, 3), Some(15), "wait until the next minute");
        assert_eq!(l.count(2, t, 3), None, "per key");
        assert_eq!(l.count(1, t + 15_000, 3), None, "a new minute");
    }
}
