//! The integration API (`/api/v1/…`, API keys only) and the admin page for its keys.

pub mod auth;
pub mod contacts;
pub mod event_writer;
pub mod events;
pub mod feedback;
pub mod idempotency;
pub mod keys;
pub mod limit;
pub mod openapi;
pub mod problem;
mod routes;
pub mod stats;
pub mod suppressions;
pub mod try_it_endpoint;

pub use routes::*;
