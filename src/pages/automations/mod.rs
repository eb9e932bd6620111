//! The automation pages: the overview, the wizard (1 Edit Event → 2 Define Job →
//! 3 Define Time Frame), and an automation's detail page with its runs.

mod common;
mod detail;
mod event;
mod job;
mod overview;
mod time_frame;
mod try_it_page;

pub use common::*;
