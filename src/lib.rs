//! Herald: event-based automations for marketing teams, with a durable in-process
//! scheduler. The binary (`src/main.rs`) only parses the command line and calls
//! [`cli::run`]; tests build the same [`app::Application`].

pub mod accounts;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod automations;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consent;
pub mod contacts;
pub mod db;
pub mod deliveries;
pub mod dkim;
pub mod engagement;
pub mod events;
pub mod feedback;
pub mod intake;
pub mod jobs;
pub mod links;
pub mod logging;
pub mod mail;
pub mod messages;
pub mod metrics;
pub mod networks;
pub mod pages;
pub mod retention;
pub mod scheduler;
pub mod sealed;
pub mod settings;
pub mod smtp_url;
pub mod sns;
pub mod state;
pub mod stats;
pub mod suppressions;
pub mod tracking;
pub mod types;
pub mod web;
pub mod webhook;
pub mod worker;

/// The version, also used to bust caches of static files.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
