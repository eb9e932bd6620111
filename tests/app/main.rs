//! Integration tests: one binary, every test on SQLite and (when
//! `HERALD_TEST_POSTGRES_URL` is set) on PostgreSQL.

/// Runs each named `async fn name(app: TestApp)` once per engine: declares
/// `mod name { fn sqlite; fn postgres }` beside it. The bodies are plain
/// functions, so rustfmt formats them.
macro_rules! on_both_engines {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    crate::helpers::TestApp::on(crate::helpers::Engine::Sqlite)
                        .run(super::$name)
                        .await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    crate::helpers::TestApp::on(crate::helpers::Engine::Postgres)
                        .run(super::$name)
                        .await
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
mod config;
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
