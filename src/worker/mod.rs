//! The worker: the loop that claims due runs and hands each to its job (`run`), and
//! Try it, which answers "when and whether would this automation run for this
//! contact" with the scheduler's own functions (`try_it_answer`); beside it, the
//! double opt-in confirmation emails (`confirmations`).

pub mod confirmations;
pub mod execute;
pub mod run;
pub mod try_it_answer;

pub use execute::{Housekeeping, Scheduler};
pub use run::Worker;
