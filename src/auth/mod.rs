//! System users' services: password hashing and the password rules (`password`),
//! the users' table (`users`) and sign-in throttling (`throttle`). Their pages are
//! in `crate::pages::staff`.

pub mod password;
pub mod throttle;
pub mod users;

pub use password::{PasswordHasher, Plaintext, Priority};
