//! CSV import: the upload is checked as a whole first (so a bad file changes
//! nothing), then imported in the background in batched transactions, with its
//! progress stored so any page (or instance) can show it.
//!
//! Header row: `email` (required), `first_name`, `last_name`; every other column is
//! an attribute. Empty cells leave existing values as they are. A row that repeats
//! an email seen earlier in the file is rejected, as is a row with a bad email, an
//! over-long value or the wrong number of fields — with its line number.

pub mod batch;
pub mod check;
pub mod store;
