//! What the test harness promises the tests themselves.

use std::sync::{Arc, Mutex};

use sqlx::Connection;

use crate::helpers::{Engine, skipped_once};

/// A PostgreSQL test that panics still drops its database (the harness's guard
/// does it while the test unwinds). The panic below is printed: it is the point.
#[test]
fn a_panicking_postgres_test_leaves_no_database_behind() {
    let Ok(admin_url) = std::env::var("HERALD_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI needs PostgreSQL"
        );
        skipped_once("PostgreSQL", "set HERALD_TEST_POSTGRES_URL to run them");
        return;
    };
    let name: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = Arc::clone(&name);
    let failed = std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(
                crate::helpers::TestApp::on(Engine::Postgres).run(|app| async move {
                    *seen.lock().unwrap() = app.postgres_database();
                    panic!("a test that fails on purpose");
                }),
            );
    })
    .join();
    assert!(failed.is_err(), "the test body panicked");
    let name = name
        .lock()
        .unwrap()
        .clone()
        .expect("the test ran on a database of its own");
    let left: i64 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        });
    assert_eq!(left, 0, "{name} was left behind");
}
