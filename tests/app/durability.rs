//! Nothing sent twice while a process holds its runs: a graceful stop under load, a
//! database restart in the middle of a drain and a full disk each leave every
//! recipient with one email — real `herald serve` processes, a real SMTP server.

use std::collections::HashMap;
use std::time::Duration;

use herald::db::Db;

use crate::binary::{Herald, refs};
use crate::helpers::{Engine, TestDb};
use crate::processes::{ONE_AT_A_TIME, count, env, now_ms, setup, wait_for};
use crate::smtp::SmtpServer;

/// How many emails each address received.
fn deliveries(smtp: &SmtpServer) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for m in smtp.messages() {
        for to in m.to {
            *seen.entry(to).or_insert(0) += 1;
        }
    }
    seen
}

/// Asserts that each of `people` got exactly one email (of those `seen`).
fn each_once(seen: &HashMap<String, usize>, people: &[(i64, String)], logs: &str) {
    let twice: Vec<_> = people
        .iter()
        .filter(|(_, e)| seen.get(e).is_some_and(|n| *n > 1))
        .collect();
    assert!(
        twice.is_empty(),
        "{} of {} people were emailed more than once, e.g. {:?}\n{}",
        twice.len(),
        people.len(),
        twice.iter().take(3).map(|(_, e)| e).collect::<Vec<_>>(),
        tail(logs)
    );
    for (_, email) in people {
        assert_eq!(seen.get(email), Some(&1), "{email} got no email");
    }
}

/// A process's warnings and errors (at most 40), for a failure message.
fn tail(logs: &str) -> String {
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    lines[..lines.len().min(40)].join("\n")
}

/// An API key for the processes of this test.
async fn api_key(db: &Db) -> String {
    let mut tx = db.begin().await.unwrap();
    let (_, key) = herald::api::keys::create(&mut tx, "load", 0, now_ms())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    key.expose().to_string()
}

/// Posts *New Password Requested* for each of `people` to `base`, from 16 callers
/// at once.
async fn post_events(base: &str, key: &str, people: &[(i64, String)]) {
    let client = reqwest::Client::new();
    let mut callers = tokio::task::JoinSet::new();
    for slice in people.chunks(people.len().div_ceil(16)) {
        let (client, base, key) = (client.clone(), base.to_string(), key.to_string());
        let emails: Vec<String> = slice.iter().map(|(_, e)| e.clone()).collect();
        callers.spawn(async move {
            for email in emails {
                let r = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({
                        "type": "new_password_requested",
                        "contact": { "email": email }
                    }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
            }
        });
    }
    while let Some(done) = callers.join_next().await {
        done.unwrap();
    }
}

/// SIGTERM to one of two instances while it works through runs that arrived over
/// its API: it stores what it did on connections that outlive its HTTP server and
/// hands back the rest, which the other instance runs at once — nobody is emailed
/// twice and no run stays `running`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_under_api_load_sends_nothing_twice_postgres() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(test_db) = TestDb::create(Engine::Postgres, dir.path()).await else {
        return;
    };
    let db = Db::connect(&test_db.url).await.unwrap();
    let people = setup(&db, 300).await;
    let key = api_key(&db).await;
    let smtp = SmtpServer::start().await;
    let env = env(&test_db.url, &smtp, Engine::Postgres);
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let a = Herald::start(&dir_a, &refs(&env));
    let b = Herald::start(&dir_b, &refs(&env));

    post_events(&a.address, &key, &people).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut logs = a.stop();
    wait_for(&db, "'done'", 300, Duration::from_secs(120)).await;
    logs.push_str(&b.stop());

    assert!(
        !logs.contains("storing done runs failed") && !logs.contains("releasing leases failed"),
        "{}",
        tail(&logs)
    );
    assert_eq!(count(&db, "'running', 'pending', 'failed'").await, 0);
    each_once(&deliveries(&smtp), &people, &logs);
    db.close().await;
    test_db.drop_database().await;
}

/// Says why a test that needs root's tools does not run here; in CI it must.
fn skip(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true, but {why}");
    }
    eprintln!("skipped: {why}");
}

/// A small tmpfs the test mounts (and unmounts when dropped), to fill up.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self {
                path: path.to_path_buf(),
            }),
            Ok(out) => {
                skip(&format!(
                    "cannot mount a tmpfs here: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skip(&format!("cannot run mount: {e}"));
                None
            }
        }
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path.join("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

/// The status `request` is answered with; that it is answered at all.
async fn answer(request: reqwest::RequestBuilder) -> reqwest::StatusCode {
    request
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer at all: {e}"))
        .status()
}

/// SQLite on a disk that fills while emails are on their way: the done runs wait
/// in the process until there is room again (nobody is emailed twice); meanwhile
/// every request gets an answer — 503 for a write, the probes as they are — and
/// once space is freed, writes work again without a restart (a connection left
/// inside a failed transaction is not reused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_sends_nothing_twice_and_writes_work_again_once_freed_sqlite() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("data"), "16m") else {
        return;
    };
    let url = format!("sqlite://{}", dir.path().join("data/herald.db").display());
    let db = Db::connect(&url).await.unwrap();
    let people = setup(&db, 40).await;
    let key = api_key(&db).await;
    let smtp = SmtpServer::start().await;
    let env = env(&url, &smtp, Engine::Sqlite);
    let herald = Herald::start(dir.path(), &refs(&env));
    let client = reqwest::Client::new();
    let base = herald.address.clone();

    // Every email reaches the mail server, whose "250" waits; the disk fills.
    smtp.hold();
    crate::processes::request_passwords(&db, &people).await;
    let started = std::time::Instant::now();
    while smtp.count() < people.len() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} emails",
            smtp.count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(db.write())
        .await
        .unwrap();
    disk.fill();
    smtp.release();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // While full: an answer to everything; a write is refused with a reason.
    let event = |email: &str| {
        client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(&key)
            .json(
                &serde_json::json!({"type": "new_password_requested", "contact": {"email": email}}),
            )
    };
    let refused = event("nobody@example.com")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", herald.output()));
    assert_eq!(refused.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{problem}"
    );
    for path in ["/login", "/healthz", "/preferences/login"] {
        answer(client.get(format!("{base}{path}"))).await;
    }
    // The sign-in page stores its session (a form token): it says to try again.
    let staff = crate::helpers::browser();
    let page = staff.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let html = page.text().await.unwrap();
    assert!(html.contains("Try again in a moment"), "{html}");
    assert_eq!(
        answer(client.get(format!("{base}/readyz"))).await,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "not ready while nothing can be written"
    );
    assert_eq!(count(&db, "'done'").await, 0, "nothing could be stored");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Room again: the outcomes are stored, and writes work without a restart.
    disk.free();
    wait_for(&db, "'done'", people.len() as i64, Duration::from_secs(60)).await;
    let accepted = event(&people[0].1).send().await.unwrap();
    assert_eq!(accepted.status(), reqwest::StatusCode::ACCEPTED);
    assert_eq!(
        answer(client.get(format!("{base}/readyz"))).await,
        reqwest::StatusCode::OK
    );
    // A sign-in (a wrong password: its failure is written in a transaction).
    let staff = crate::helpers::browser();
    let signed_in = crate::binary::sign_in_at(&staff, &base, "admin@localhost", "wrong").await;
    assert_eq!(
        signed_in.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "the form again, not a 500"
    );
    // The run of the last event waits for the outcome of the test's own.
    wait_for(
        &db,
        "'done'",
        people.len() as i64 + 1,
        Duration::from_secs(60),
    )
    .await;
    let logs = herald.stop();
    // One line when the database stops writing and one when it is back — not a
    // line (and a try) per turn of a loop.
    let outage_lines = logs.lines().filter(|l| l.contains("scheduler: ")).count();
    assert!(outage_lines < 10, "{outage_lines} lines:\n{}", tail(&logs));
    // The same for requests: five failed while the disk was full, one line says so.
    let failing = logs
        .lines()
        .filter(|l| l.contains("the database is not answering requests"))
        .count();
    let back = logs
        .lines()
        .filter(|l| l.contains("the database answers requests again"))
        .count();
    assert_eq!((failing, back), (1, 1), "{}", tail(&logs));
    let seen = deliveries(&smtp);
    assert_eq!(seen.get(&people[0].1), Some(&2), "asked twice, sent twice");
    each_once(&seen, &people[1..], &logs);
    db.close().await;
    drop(disk);
}

/// A PostgreSQL server of the test's own (initdb in a temporary folder, run as the
/// `postgres` user on a free port), which it may restart without disturbing the
/// other tests' server.
struct OwnPostgres {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnPostgres {
    fn start() -> Option<Self> {
        // Debian's server packages: /usr/lib/postgresql/<version>/bin.
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|v| v.path().join("bin"))
            .find(|bin| bin.join("initdb").exists());
        let Some(bin) = bin else {
            skip("PostgreSQL's server programs (initdb) are not installed");
            return None;
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            skip(
                "starting a PostgreSQL server of the test's own needs root (to run it as postgres)",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("pg");
        std::fs::create_dir(&data).unwrap();
        let chown = std::process::Command::new("chown")
            .args(["-R", "postgres:"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let me = Self {
            bin,
            data,
            port,
            _dir: dir,
        };
        me.as_postgres("initdb", &["-A", "trust", "-U", "postgres", "-D"]);
        me.pg_ctl(&["start"]);
        Some(me)
    }

    /// Runs one of PostgreSQL's programs as the `postgres` user, the data folder last.
    fn as_postgres(&self, program: &str, args: &[&str]) {
        let out = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, action: &[&str]) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories=''",
            self.port
        );
        let mut args = action.to_vec();
        args.extend(["-w", "-m", "fast", "-o", &options, "-l"]);
        let log = self.data.with_file_name("log");
        let log = log.to_str().unwrap();
        args.extend([log, "-D"]);
        self.as_postgres("pg_ctl", &args);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (its connections are cut).
    fn stop(&self) {
        self.pg_ctl(&["stop"]);
    }

    fn start_again(&self) {
        self.pg_ctl(&["start"]);
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .output();
    }
}

/// PostgreSQL restarts in the middle of a drain, while emails are on their way:
/// the outcomes of those sent are stored once it is back (the process kept trying,
/// holding its leases), so nobody is emailed twice and no run is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_drain_sends_nothing_twice_postgres() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&pg.url()).await.unwrap();
    let people = setup(&db, 600).await;
    let smtp = SmtpServer::start().await;
    let env = env(&pg.url(), &smtp, Engine::Postgres);
    let herald = Herald::start(dir.path(), &refs(&env));
    crate::processes::request_passwords(&db, &people).await;
    db.close().await;
    let started = std::time::Instant::now();
    while smtp.count() < 100 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} emails",
            smtp.count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Emails reach the mail server and wait for its "250"; the runs' table is
    // locked, so their completions are inside the database when it goes away;
    // 3 s later it is back.
    smtp.hold();
    let held = smtp.count();
    while smtp.count() < held + 5 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} emails",
            smtp.count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE job_runs IN EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    smtp.release();
    tokio::time::sleep(Duration::from_millis(500)).await;
    pg.stop();
    drop(lock);
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_again();
    let db = Db::connect(&pg.url()).await.unwrap();
    wait_for(&db, "'done'", people.len() as i64, Duration::from_secs(240)).await;
    let logs = herald.stop();
    assert!(
        logs.contains("the database answers again"),
        "the restart was noticed:\n{}",
        tail(&logs)
    );
    assert_eq!(count(&db, "'running', 'pending', 'failed'").await, 0);
    each_once(&deliveries(&smtp), &people, &logs);
    db.close().await;
}

/// A message the mail server defers (451) on a pooled connection is one try: the
/// attempt fails as transient, and the scheduler's backoff decides the next try.
#[tokio::test]
async fn a_deferred_message_is_tried_once_per_attempt() {
    let smtp = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mailer =
        herald::mail::Mailer::new(Some(&smtp.url()), None, dir.path(), Duration::from_secs(10))
            .unwrap();
    // A first message leaves a connection in the pool.
    mailer
        .send(&crate::mail::hello("first@example.com"))
        .await
        .unwrap();
    smtp.defer("later@example.com");
    let sent = mailer.send(&crate::mail::hello("later@example.com")).await;
    assert!(
        matches!(&sent, Err(herald::mail::SendError::Transient(e)) if e.contains("451")),
        "{sent:?}"
    );
    assert_eq!(smtp.tries_for("later@example.com"), 1);
}
