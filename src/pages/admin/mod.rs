//! Admin pages that are not about system users: the audit log, the settings,
//! whether the preference center works, API keys, the suppression list and the
//! bounces and complaints that matched no email.

pub mod api_keys;
pub mod audit;
pub mod deliverability;
pub mod preference_center;
pub mod reports;
pub mod settings;
pub mod suppressions;
