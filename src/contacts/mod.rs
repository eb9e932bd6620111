//! Contacts: the model, its parsing at the boundary and its store. Groups, the CSV
//! import and the pages live beside it.

pub mod demo;
pub mod export;
pub mod groups;
pub mod import;
pub mod search;
mod store;

pub use store::*;
