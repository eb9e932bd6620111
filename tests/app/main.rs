//! Integration tests: one binary, every test on SQLite and (when
//! `HERALD_TEST_POSTGRES_URL` is set) on PostgreSQL.

/// Declares tests that run once per engine: `mod name { fn sqlite; fn postgres }`
/// (a test's doc comment documents its module).
macro_rules! on_both_engines {
    ($($(#[$doc:meta])* async fn $name:ident($app:ident: TestApp) $body:block)+) => {
        $(
            $(#[$doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($app: crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    crate::helpers::run_on(crate::helpers::Engine::Sqlite, body).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    crate::helpers::run_on(crate::helpers::Engine::Postgres, body).await
                }
            }
        )+
    };
}

mod helpers;
mod logs;
mod preferences;
mod processes;

mod admin;
mod api;
mod automations;
mod binary;
mod browser;
mod contacts;
mod durability;
mod hardening;
mod harness;
mod journeys;
mod mail;
mod messages;
mod queue;
mod scheduler;
mod security;
mod sign_in;
mod smtp;
mod test_job;
mod try_it;
mod ux;
mod webhooks;
