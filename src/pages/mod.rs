//! Every HTML page: one handler per route; each parses its input into checked
//! values, calls the stores below, and renders an askama template. The JSON API is
//! beside it, in `api/`.

pub mod admin;
pub mod automations;
pub mod contacts;
pub mod dashboard;
pub mod messages;
pub mod preferences;
pub mod probes;
pub mod staff;
pub mod stats;
