//! The API's one door: a bearer key, checked before any handler. Session cookies do
//! not open it (the API scope has no session), so it has no CSRF surface.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError, web};

use crate::api::keys::{self, ApiKey};
use crate::api::problem::Problem;
use crate::cache::Recent;
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
    let known = req
        .app_data::<web::Data<KnownKeys>>()
        .cloned()
        .expect("known keys");
    let key = match presented {
        Some(p) => known
            .authenticate(&state.db, &p, state.clock.now_ms())
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

/// Keys that opened the door in the last second, by digest: a client calling many
/// times a second is looked up once a second, not on every call. A revoked key is
/// refused at once by this process, within a second by the others.
pub struct KnownKeys(Recent<String, ApiKey>);

impl Default for KnownKeys {
    fn default() -> Self {
        Self(Recent::new(&keys::REVOKED))
    }
}

impl KnownKeys {
    async fn authenticate(
        &self,
        db: &crate::db::Db,
        presented: &str,
        now_ms: i64,
    ) -> Result<Option<ApiKey>, sqlx::Error> {
        let digest = keys::digest(presented.trim());
        if let Some(key) = self.0.get(&digest) {
            return Ok(Some(key));
        }
        let generation = self.0.generation();
        let key = keys::authenticate(db, presented, now_ms).await?;
        if let Some(k) = &key {
            // Unknown keys are not kept: guessing cannot fill the cache.
            self.0.put(digest, generation, k.clone());
        }
        Ok(key)
    }
}
