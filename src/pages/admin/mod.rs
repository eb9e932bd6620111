//! Admin pages that are not about system users: the audit log, the settings,
//! whether the preference center works, API keys and the suppression list.

pub mod api_keys;
pub mod audit;
pub mod preference_center;
pub mod settings;
pub mod suppressions;
