//! What comes in: an event recorded (`events`) and, in the same transaction, turned
//! into the runs of the automations it matches (`runs`), so an event exists exactly
//! when its change committed, with its runs.

pub mod events;
pub mod runs;
