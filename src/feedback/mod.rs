//! Hearing back from the mail system: bounces and complaints received over SMTP
//! (`smtp.rs`), read (`report.rs`), matched to the email they are about and acted
//! on (`take.rs`), and kept (`store.rs`); and the same from sending providers'
//! webhooks (`providers.rs`).

pub mod providers;
pub mod report;
pub mod smtp;
pub mod store;
pub mod take;
