//! The OpenAPI 3.1 document of the API, generated from the handlers and types
//! (`utoipa`), at `/api/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", description = "Report events, keep contacts, read runs. Authenticate with `Authorization: Bearer <API key>`."),
    paths(
        crate::api::event_writer::post_event,
        crate::api::events::post_batch,
        crate::api::contacts::post_contact,
        crate::api::contacts::get_contact,
        crate::api::contacts::get_run,
        crate::api::try_it::try_automation,
    ),
    components(schemas(crate::api::problem::Problem)),
    modifiers(&BearerKey)
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`.
pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(ApiDoc::openapi().to_json().unwrap_or_default())
}
