//! Real `herald serve` processes: two sharing a PostgreSQL queue, and a crash
//! (SIGKILL) in the middle of a batch of runs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use herald::auth::{PasswordHasher, Plaintext, Priority};
use herald::automations;
use herald::automations::model::{EventFilter, State, Target};
use herald::automations::time_frame::{ALL_DAYS, HolidayRule, Hours};
use herald::automations::wizard::{EventPart, JobChoice, TimeFramePart};
use herald::contacts::{self, ContactForm, import};
use herald::db::Db;
use herald::events::catalogue::{EventType, NewEvent, Source};

use crate::binary::{Herald, refs};
use crate::helpers::{Engine, TestDb};
use crate::smtp::{SmtpServer, password_in};

/// These tests start busy `herald` processes: one at a time, so that in a
/// `cargo test` run (threads of one process) they do not starve each other.
pub(crate) static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// An active "New Password Requested → Send New Password to Contact" automation and
/// `n` contacts.
pub(crate) async fn setup(db: &Db, n: usize) -> Vec<(i64, String)> {
    db.migrate().await.unwrap();
    let now = now_ms();
    let part = EventPart {
        name: "Password on request".into(),
        description: String::new(),
        event: EventType::NewPasswordRequested,
        filter: EventFilter::Any,
        selection: vec![],
    };
    let frame = TimeFramePart {
        start_at: now - 3_600_000,
        time_zone: "UTC".into(),
        end_at: None,
        days: ALL_DAYS,
        hours: Hours::ALL_DAY,
        holidays: HolidayRule::Always,
        notify: vec![],
        notify_days_before: 30,
    };
    let mut tx = db.begin().await.unwrap();
    let id = automations::store::create(&mut tx, 1, &part, "UTC", now)
        .await
        .unwrap();
    let job = JobChoice {
        kind: "send_new_password_to_contact".into(),
        target: Some(Target::EventParameter),
        config: serde_json::Value::Null,
        delay: None,
    };
    automations::store::save_job(&mut tx, id, &job, now)
        .await
        .unwrap();
    automations::store::save_time_frame(&mut tx, id, &frame, now)
        .await
        .unwrap();
    automations::store::set_state(&mut tx, id, State::Active, now)
        .await
        .unwrap();
    let mut people = Vec::new();
    for i in 0..n {
        let email = format!("person{i}@example.com");
        let input = ContactForm {
            email: email.clone(),
            ..Default::default()
        }
        .parse()
        .unwrap();
        people.push((
            contacts::create(&mut tx, &input, Source::Api, now)
                .await
                .unwrap(),
            email,
        ));
    }
    tx.commit().await.unwrap();
    people
}

pub(crate) async fn request_passwords(db: &Db, people: &[(i64, String)]) {
    let mut tx = db.begin().await.unwrap();
    for (id, _) in people {
        herald::intake::events::record(
            &mut tx,
            now_ms(),
            &NewEvent::contact(EventType::NewPasswordRequested, *id),
        )
        .await
        .unwrap();
    }
    db.commit(tx).await.unwrap();
}

pub(crate) async fn count(db: &Db, statuses: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM job_runs WHERE status IN ({statuses})"
    )))
    .fetch_one(db.read())
    .await
    .unwrap()
}

pub(crate) async fn wait_for(db: &Db, statuses: &str, n: i64, limit: Duration) {
    let started = Instant::now();
    while count(db, statuses).await < n {
        assert!(
            started.elapsed() < limit,
            "only {} of {n} runs are {statuses} after {limit:?}",
            count(db, statuses).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn env(db_url: &str, smtp: &SmtpServer, engine: Engine) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("HERALD_SMTP_URL", smtp.url()),
        ("HERALD_HASH_THREADS", "2".to_string()),
        (
            "HERALD_SECRET_KEY",
            "a-secret-key-shared-by-both-instances-of-herald".to_string(),
        ),
        ("HERALD_LOG", "info".to_string()),
    ];
    if engine == Engine::Postgres {
        env.push(("HERALD_DATABASE_URL", db_url.to_string()));
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_run_each_job_exactly_once() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = TestDb::create(Engine::Postgres, dir.path()).await else {
        return;
    };
    let db = Db::connect(&test_db.url).await.unwrap();
    let people = setup(&db, 2000).await;
    let smtp = SmtpServer::start().await;
    let env = env(&test_db.url, &smtp, Engine::Postgres);
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let a = Herald::start(&dir_a, &refs(&env));
    let b = Herald::start(&dir_b, &refs(&env));
    request_passwords(&db, &people).await;
    wait_for(&db, "'done'", 2000, Duration::from_secs(480)).await;
    let out_a = a.stop();
    let out_b = b.stop();
    let attempts: Vec<i64> = sqlx::query_scalar("SELECT attempts FROM job_runs")
        .fetch_all(db.read())
        .await
        .unwrap();
    assert!(attempts.iter().all(|n| *n == 1), "a run was claimed twice");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2000, "each run sent exactly one email");
    let recipients: std::collections::HashSet<_> =
        messages.iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(recipients.len(), 2000);
    assert!(
        out_a.contains("run done") && out_b.contains("run done"),
        "both instances worked"
    );
    db.close().await;
    test_db.drop_database().await;
}

async fn crash_in_the_middle(engine: Engine) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = TestDb::create(engine, dir.path()).await else {
        return;
    };
    let url = match engine {
        Engine::Sqlite => format!("sqlite://{}", dir.path().join("data/herald.db").display()),
        Engine::Postgres => test_db.url.clone(),
    };
    let db = Db::connect(&url).await.unwrap();
    let people = setup(&db, 500).await;
    let smtp = SmtpServer::start().await;
    let env = env(&url, &smtp, engine);
    // The runs wait in the database before Herald starts.
    request_passwords(&db, &people).await;
    let first = Herald::start(dir.path(), &refs(&env));
    wait_for(&db, "'done'", 100, Duration::from_secs(240)).await;
    let mut logs = first.kill();
    let killed_at = Instant::now();
    let second = Herald::start(dir.path(), &refs(&env));
    wait_for(&db, "'done'", 500, Duration::from_secs(240)).await;
    // Nothing stayed running beyond the lease (30 s) plus a minute.
    assert!(
        killed_at.elapsed() < Duration::from_secs(90),
        "took {:?} to finish after the crash",
        killed_at.elapsed()
    );
    assert_eq!(count(&db, "'running', 'pending', 'failed'").await, 0);
    logs.push_str(&second.stop());
    // For every contact, the last email received carries the working password.
    let hashes: HashMap<i64, Option<String>> =
        sqlx::query_as::<_, (i64, Option<String>)>("SELECT id, temp_hash FROM contacts")
            .fetch_all(db.read())
            .await
            .unwrap()
            .into_iter()
            .collect();
    let hasher = PasswordHasher::start(2);
    for (id, email) in &people {
        let mail = smtp
            .last_to(email)
            .unwrap_or_else(|| panic!("no email to {email}"));
        let password = password_in(&mail.data);
        assert!(
            hasher
                .verify(
                    &Plaintext::new(password),
                    hashes[id].as_deref(),
                    Priority::Interactive
                )
                .await,
            "{email}: the last email's password does not work"
        );
    }
    db.close().await;
    test_db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_no_run_and_the_last_email_works_sqlite() {
    crash_in_the_middle(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_no_run_and_the_last_email_works_postgres() {
    crash_in_the_middle(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_one_sqlite_file_does_not_run_the_scheduler() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/herald.db").display());
    let db = Db::connect(&url).await.unwrap();
    let people = setup(&db, 1).await;
    let smtp = SmtpServer::start().await;
    let env = env(&url, &smtp, Engine::Sqlite);
    let first = Herald::start(dir.path(), &refs(&env));
    let second = Herald::start(dir.path(), &refs(&env));
    let started = Instant::now();
    while !second
        .output()
        .contains("another Herald process runs the scheduler")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the second process did not say why:\n{}",
            second.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(first.output().contains("scheduler started"));
    assert!(!second.output().contains("scheduler started"));
    // An event another process records (here this test, as the second Herald would
    // when a contact asks for a password there) is run by the first, which nothing
    // woke: it looks every few seconds.
    request_passwords(&db, &people).await;
    wait_for(&db, "'done'", 1, Duration::from_secs(15)).await;
    assert_eq!(smtp.count(), 1);
    db.close().await;
    // When the first stops, the second takes over.
    first.stop();
    let started = Instant::now();
    while !second.output().contains("scheduler started") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no takeover:\n{}",
            second.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.stop();
}

/// An import is a queued run: SIGKILL in the middle, start again, and it resumes
/// after its last batch — every row imported once, one *Contact Import Finished*.
async fn an_import_survives_a_crash(engine: Engine) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = TestDb::create(engine, dir.path()).await else {
        return;
    };
    let url = match engine {
        Engine::Sqlite => format!("sqlite://{}", dir.path().join("data/herald.db").display()),
        Engine::Postgres => test_db.url.clone(),
    };
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    const ROWS: i64 = 120_000;
    let csv = dir.path().join("people.csv");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        writeln!(out, "email,first_name,city").unwrap();
        for i in 0..ROWS {
            writeln!(out, "person{i}@example.com,Person{i},Town{}", i % 50).unwrap();
        }
    }
    let checked = import::check::check_file(&csv).unwrap();
    let options = import::batch::Options {
        group_id: None,
        fire_registered: false,
        started_by: 0,
        consent_asserted_by: String::new(),
        file_name: "people.csv".into(),
    };
    let id = import::store::start(&db, now_ms(), &csv, &checked, &options, 0)
        .await
        .unwrap();
    let progress = async || import::store::find(&db, id.0).await.unwrap().unwrap();
    let smtp = SmtpServer::start().await;
    let env = env(&url, &smtp, engine);
    let first = Herald::start(dir.path(), &refs(&env));
    let started = Instant::now();
    while progress().await.rows_done == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the import did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut logs = first.kill();
    let at_kill = progress().await;
    assert!(
        at_kill.rows_done < ROWS && at_kill.status == "running",
        "the import ended before the kill: {at_kill:?}"
    );
    let second = Herald::start(dir.path(), &refs(&env));
    let started = Instant::now();
    while progress().await.status == "running" {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the import was not taken up again: {:?}",
            progress().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    logs.push_str(&second.stop());
    let done = progress().await;
    assert_eq!(
        (
            done.status.as_str(),
            done.rows_done,
            done.created + done.updated,
            done.rejected
        ),
        ("done", ROWS, ROWS, 0),
        "{done:?}\n{logs}"
    );
    let contacts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
        .fetch_one(db.read())
        .await
        .unwrap();
    assert_eq!(contacts, ROWS);
    let finished: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE type = 'contact_import_finished'")
            .fetch_one(db.read())
            .await
            .unwrap();
    assert_eq!(finished, 1);
    assert!(!csv.exists(), "the uploaded file is deleted at the end");
    db.close().await;
    test_db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_survives_a_crash_sqlite() {
    an_import_survives_a_crash(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_survives_a_crash_postgres() {
    an_import_survives_a_crash(Engine::Postgres).await;
}
