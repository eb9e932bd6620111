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

/// Runs each named `async fn name(app: TestApp, smtp: SmtpServer)` on both
/// engines with an SMTP server behind the app (and the metrics token set).
macro_rules! with_smtp {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                async fn run(engine: crate::helpers::Engine) {
                    let smtp = crate::smtp::SmtpServer::start().await;
                    let url = smtp.url();
                    let configure = |c: &mut herald::config::Config| {
                        c.smtp_url = Some(herald::config::Secret::from(url));
                        c.inbound_smtp_bind = Some("127.0.0.1:0".parse().unwrap());
                        c.metrics_token =
                            Some(herald::config::Secret::from(crate::helpers::METRICS_TOKEN));
                    };
                    crate::helpers::TestApp::on(engine)
                        .configure(configure)
                        .run(|app| super::$name(app, smtp))
                        .await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run(crate::helpers::Engine::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run(crate::helpers::Engine::Postgres).await
                }
            }
        )+
    };
}

mod helpers;
mod logs;
mod preferences;
mod processes;
mod providers;
mod tracking;

mod admin;
mod api;
mod automations;
mod binary;
mod bounces;
mod browser;
mod config;
mod consent;
mod contacts;
mod dkim;
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
mod suppressions;
mod test_job;
mod try_it;
mod ux;
mod webhooks;
