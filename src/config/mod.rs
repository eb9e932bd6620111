//! Process configuration: built-in defaults, then an optional `herald.toml`, then
//! `HERALD_*` environment variables. Settings that staff change at run time (brand,
//! sender, time zone…) live in the database instead, see [`crate::settings`].

mod keys;
mod load;

pub use keys::redact_url;
pub use load::{Config, ConfigError};
pub use secrecy::{ExposeSecret, SecretString as Secret};
