//! Sending email: over SMTP (lettre, pooled, with a timeout on every send) or, with
//! no SMTP URL, into `data/outbox/` as `.eml` files announced on the console.

mod mailer;
mod pool;
mod tls;

pub use mailer::*;
