//! Plumbing shared by all pages: errors, rendering, flash messages, the page
//! context, CSRF, security headers, request ids and static files.

pub mod assets;
pub mod chart;
pub mod csrf;
pub mod download;
pub mod form;
pub mod input;
pub mod middleware;
pub mod outage;
mod page;
pub mod session_store;

pub use page::*;
