//! The OpenAPI 3.1 document of the API, generated from the handlers and types
//! (`utoipa`), at `/api/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema, Server};
use utoipa::{Modify, OpenApi};

use crate::contacts::Status as ContactStatus;
use crate::scheduler::status::RunStatus;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", description = "Report events, keep contacts, read runs. Authenticate with `Authorization: Bearer <API key>`."),
    paths(
        crate::api::event_writer::post_event,
        crate::api::events::post_batch,
        crate::api::contacts::post_contact,
        crate::api::contacts::get_contact,
        crate::api::contacts::export_contact,
        crate::api::contacts::get_run,
        crate::api::suppressions::list,
        crate::api::suppressions::add,
        crate::api::suppressions::remove,
        crate::api::try_it_endpoint::try_automation,
        crate::api::feedback::post,
        crate::api::stats::message,
        crate::api::stats::automation,
    ),
    components(schemas(crate::api::problem::Problem)),
    tags(
        (name = "events", description = "Report what happened; automations on those events schedule runs."),
        (name = "contacts", description = "Create, update and read contacts."),
        (name = "runs", description = "What a scheduled job did, or will do."),
        (name = "suppressions", description = "The suppression list: addresses that get no prepared message."),
        (name = "automations", description = "Ask an automation what it would do with an event."),
        (name = "statistics", description = "Sent, delivered, bounced, opened and clicked, per prepared message and per automation."),
        (name = "feedback", description = "Bounces and complaints from a sending provider's webhook (its own credentials, not an API key)."),
    ),
    modifiers(&BearerKey, &Enums)
)]
pub struct ApiDoc;

/// The values a field can take, written from the lists the code checks against
/// (so a generated client gets an enum, and the document cannot drift from them).
struct Enums;

impl Modify for Enums {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let fields: [(&str, &str, Vec<serde_json::Value>); 7] = [
            (
                "EventRequest",
                "type",
                codes(crate::api::events::ALLOWED.iter().map(|k| k.code())),
            ),
            (
                "RunView",
                "status",
                codes(RunStatus::ALL.iter().map(|s| s.code())),
            ),
            (
                "DeliveryView",
                "kind",
                codes(crate::deliveries::Kind::ALL.iter().map(|k| k.code())),
            ),
            (
                "DeliveryView",
                "fate",
                codes(crate::deliveries::Fate::ALL.iter().map(|f| f.code())),
            ),
            (
                "ContactView",
                "status",
                codes(ContactStatus::ALL.iter().map(|s| s.code())),
            ),
            (
                "ConsentView",
                "action",
                codes(crate::consent::Action::ALL.iter().map(|a| a.code())),
            ),
            (
                "ConsentView",
                "method",
                codes(crate::consent::Method::ALL.iter().map(|m| m.code())),
            ),
        ];
        for (schema, field, values) in fields {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
                && let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field)
            {
                property.enum_values = Some(values);
            }
        }
    }
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "provider_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The codes as JSON values, for an `enum`.
fn codes(codes: impl Iterator<Item = &'static str>) -> Vec<serde_json::Value> {
    codes.map(serde_json::Value::from).collect()
}

/// `GET /api/openapi.json`, its server this Herald's base URL.
pub async fn document(state: actix_web::web::Data<AppState>) -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    let base = state.config.base_url.as_str().trim_end_matches('/');
    doc.servers = Some(vec![Server::new(base)]);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.to_json().unwrap_or_default())
}
