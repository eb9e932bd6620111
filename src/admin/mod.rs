//! Admin pages that are not about system users: the audit log, the settings, and
//! whether the preference center works.

pub mod audit;
pub mod preference_center;
pub mod settings;
