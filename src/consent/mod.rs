//! Consent to a group's messages (SPEC §13): every way into a group goes through
//! [`subscribe`], every way out through [`unsubscribe`]. A group with double
//! opt-in makes a *pending* membership first — not a membership: nothing that
//! reads `group_members` sees it — and owes the contact a confirmation email
//! ([`sender`]); its signed link ([`Links`]) makes it a membership, and only then
//! is *Subscribed to Group (C)* recorded. How each step happened is kept in
//! `consent_records`, never changed.

mod model;
mod read;
mod store;

pub use crate::links::{ConfirmToken, Links};
pub use model::*;
pub use read::*;
pub use store::*;
