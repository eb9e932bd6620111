//! Admin pages that are not about system users: the audit log, the settings, and
//! whether the preference center works.

pub mod api_keys;
pub mod audit;
pub mod preference_center;
pub mod settings;
