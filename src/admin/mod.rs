//! Admin pages that are not about system users: the audit log and the settings.

pub mod audit;
pub mod settings;
