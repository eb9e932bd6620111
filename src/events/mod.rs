//! Events: the catalogue (what can happen) and the store (recording one, with the
//! runs it triggers, in the caller's transaction, so an event exists exactly when
//! its change committed).

pub mod catalogue;
pub mod store;
