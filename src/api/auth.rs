//! The API's one door: a bearer key, checked before any handler. Session cookies do
//! not open it (the API scope has no session), so it has no CSRF surface.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};

use crate::api::keys::{self, ApiKey};
use crate::api::problem::Problem;
use crate::state::AppState;

pub async fn require_key<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .expect("application state");
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let key = match presented {
        Some(p) => keys::authenticate(&state.db, &p, state.clock.now_ms())
            .await
            .map_err(Problem::from)?,
        None => None,
    };
    match key {
        Some(key) => {
            req.extensions_mut().insert::<ApiKey>(key);
            Ok(next.call(req).await?.map_into_left_body())
        }
        None => {
            let response = Problem::unauthorized().error_response();
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}
