//! Prepared messages: written by staff with personalisation, previewed, test-sent,
//! and sent by automations with a one-click unsubscribe link.

pub mod bounds;
pub mod compose;
pub mod store;
pub mod system;
pub mod template;
pub mod template_error;
