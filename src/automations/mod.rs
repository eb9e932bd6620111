//! Automations: "when this event happens, run this job, optionally after a delay,
//! while the time frame is active". The model, its store, the wizard's parsing, the
//! time-frame arithmetic.

pub mod model;
pub mod store;
pub mod time_frame;
pub mod wizard;
