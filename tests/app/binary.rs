//! Tests that run the real `herald` binary, as a user would from a fresh checkout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Engine, TestDb, browser, find_form, location, text_of};

pub const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// A running `herald serve` whose output is captured.
pub struct Herald {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    pub address: String,
}

fn capture(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Herald {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HERALD_BIND", "127.0.0.1:0")
            .env("HERALD_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start herald");
        let stdout = capture(child.stdout.take().unwrap());
        let stderr = capture(child.stderr.take().unwrap());
        let started = Instant::now();
        let address = loop {
            // The log line `… msg="Herald is listening on http://127.0.0.1:…" …`.
            if let Some(address) = stderr.lock().unwrap().iter().find_map(|l| {
                let (_, rest) = l.split_once("Herald is listening on ")?;
                Some(rest.split('"').next()?.to_string())
            }) {
                break address;
            }
            // Generous: a loaded CI machine may start a debug build slowly.
            if started.elapsed() > Duration::from_secs(120) || child.try_wait().unwrap().is_some() {
                panic!(
                    "herald did not start:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Self {
            child,
            stdout,
            stderr,
            address,
        }
    }

    /// The first line on stdout that `wanted` accepts, once the reader has it (the
    /// console and the log are two pipes: the log's "listening" line may come
    /// first).
    pub fn stdout_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.stdout.lock().unwrap().iter().find(|l| wanted(l)) {
                return line.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not on stdout:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn output(&self) -> String {
        let mut all = self.stdout.lock().unwrap().join("\n");
        all.push('\n');
        all.push_str(&self.stderr.lock().unwrap().join("\n"));
        all
    }

    /// SIGKILL: a crash, nothing cleaned up.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.output()
    }

    /// SIGTERM, without waiting.
    pub fn terminate(&self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }

    /// SIGTERM, and wait for a graceful exit.
    pub fn stop(self) -> String {
        self.terminate();
        self.exited()
    }

    /// Waits for a graceful exit (after [`Self::terminate`]).
    pub fn exited(mut self) -> String {
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "herald exited with {status} on SIGTERM:\n{}",
            self.output()
        );
        std::thread::sleep(Duration::from_millis(100));
        self.output()
    }
}

fn env_for(db: &TestDb, engine: Engine) -> Vec<(&'static str, String)> {
    match engine {
        // The embedded default: no database setting at all.
        Engine::Sqlite => vec![],
        Engine::Postgres => vec![("HERALD_DATABASE_URL", db.url.clone())],
    }
}

pub fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Signs in through the sign-in form of the Herald at `base`.
pub(crate) async fn sign_in_at(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let html = client
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = find_form(&html, "/login");
    form.set("email", email).set("password", password);
    client
        .post(format!("{base}/login"))
        .form(&form.fields)
        .send()
        .await
        .unwrap()
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("herald_session="))
        .map(|v| {
            v.split(';')
                .next()
                .unwrap()
                .trim_start_matches("herald_session=")
                .to_string()
        })
}

async fn first_start_then_restart(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(engine, dir.path()).await else {
        return;
    };
    let env = env_for(&db, engine);
    let herald = Herald::start(dir.path(), &refs(&env));
    let base = herald.address.clone();
    let first = herald.stdout_line(|l| l.contains("password: "));
    let temp = first
        .rsplit("password: ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(temp.len(), 16, "{first}");
    if engine == Engine::Sqlite {
        assert!(
            dir.path().join("data/herald.db").exists(),
            "SQLite file at data/herald.db"
        );
    }

    let client = browser();
    let r = sign_in_at(&client, &base, "admin@localhost", &temp).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/password",
        "a temporary password forces a change"
    );
    let mut cookies: Vec<String> = session_cookie(&r).into_iter().collect();
    let r = client
        .get(format!("{base}/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/password");

    let new_password = "correct horse battery staple";
    let html = client
        .get(format!("{base}/password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut form = find_form(&html, "/password");
    form.set("new_password", new_password)
        .set("confirm_password", new_password);
    let r = client
        .post(format!("{base}/password"))
        .form(&form.fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    cookies.extend(session_cookie(&r));
    let html = client
        .get(format!("{base}/dashboard"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text_of(&html, "h1").unwrap(), "Welcome, Administrator");
    find_form(&html, "/logout");

    let output = herald.stop();
    // The temporary password appears once: on the console line meant for it.
    assert_eq!(
        output.matches(temp.as_str()).count(),
        1,
        "temporary password leaked into the logs"
    );
    assert!(!output.contains(new_password), "new password in the logs");
    assert!(!cookies.is_empty());
    for cookie in &cookies {
        assert!(
            !output.contains(cookie.as_str()),
            "session cookie in the logs"
        );
        let decoded: String = url::form_urlencoded::parse(format!("c={cookie}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        assert!(!output.contains(&decoded), "session cookie in the logs");
    }
    assert!(
        output.contains("audit=password.changed"),
        "the logs do tell the story"
    );

    // Restart: no new admin; the chosen password works, the temporary one does not.
    let herald = Herald::start(dir.path(), &refs(&env));
    let base = herald.address.clone();
    assert!(!herald.output().contains("First start"));
    for (password, expected) in [
        (new_password, StatusCode::SEE_OTHER),
        (temp.as_str(), StatusCode::UNAUTHORIZED),
    ] {
        let client = browser();
        let r = sign_in_at(&client, &base, "admin@localhost", password).await;
        assert_eq!(r.status(), expected);
    }
    herald.stop();
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_temporary_password_and_restart_keeps_the_chosen_one_sqlite() {
    first_start_then_restart(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_a_temporary_password_and_restart_keeps_the_chosen_one_postgres() {
    first_start_then_restart(Engine::Postgres).await;
}

async fn user_create_prints_a_password_that_signs_in(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(engine, dir.path()).await else {
        return;
    };
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path()).args([
        "user",
        "create",
        "--email",
        "Mia@Example.com",
        "--role",
        "marketer",
    ]);
    for (k, v) in env_for(&db, engine) {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = stdout
        .lines()
        .find(|l| l.contains("password: "))
        .unwrap()
        .rsplit("password: ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    // Again: refused, naming the fix.
    let again = cmd.output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "user",
            "create",
            "--email",
            "x@example.com",
            "--role",
            "root",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--role"));

    let env = env_for(&db, engine);
    let herald = Herald::start(dir.path(), &refs(&env));
    let base = herald.address.clone();
    let client = browser();
    let r = sign_in_at(&client, &base, "mia@example.com", &password).await;
    assert_eq!(location(&r), "/password");
    herald.stop();
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_prints_a_password_that_signs_in_sqlite() {
    user_create_prints_a_password_that_signs_in(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_prints_a_password_that_signs_in_postgres() {
    user_create_prints_a_password_that_signs_in(Engine::Postgres).await;
}

#[test]
fn check_config_names_the_bad_key_and_value_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path()).env_clear().arg("check-config");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // What serve would refuse, check-config refuses too (one parser for both).
    let out = run(&[("HERALD_SMTP_URL", "smtp://mail.example?tls=maybe")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HERALD_SMTP_URL") && err.contains("tls=maybe"),
        "{err}"
    );

    let out = run(&[("HERALD_BIND", "localhost-ish")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HERALD_BIND") && err.contains("localhost-ish"),
        "{err}"
    );

    let out = run(&[
        (
            "HERALD_DATABASE_URL",
            "postgres://herald:db-secret-77@db.example/herald",
        ),
        (
            "HERALD_SMTP_URL",
            "smtp://mailer:smtp-secret-88@mail.example:587",
        ),
        (
            "HERALD_SECRET_KEY",
            "0123456789abcdef0123456789abcdef-key-secret",
        ),
        ("HERALD_WHATEVER", "1"),
    ]);
    assert!(out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in ["db-secret-77", "smtp-secret-88", "key-secret"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(
        text.contains("database_url = postgres://herald:[redacted]@db.example/herald"),
        "{text}"
    );
    assert!(
        text.contains("HERALD_WHATEVER"),
        "unknown keys are warned about:\n{text}"
    );

    std::fs::write(
        dir.path().join("herald.toml"),
        "bind = \"127.0.0.1:9999\"\nlog = \"warn\"\nbogus = 1\n",
    )
    .unwrap();
    let out = run(&[("HERALD_LOG", "info")]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("bind = 127.0.0.1:9999"),
        "the file is read:\n{text}"
    );
    assert!(
        text.contains("log = info"),
        "the environment wins over the file:\n{text}"
    );
    assert!(
        text.contains("bogus"),
        "unknown file keys are warned about:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_email_uses_the_outbox_or_the_mail_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["send-test-email", "--to", "ops@example.com"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(dir.path().join("data/outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .contains("Mail works.")
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("written to"),
        "the console names the file"
    );

    let smtp = crate::smtp::SmtpServer::start().await;
    let url = smtp.url();
    let dir = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .current_dir(&dir)
            .env("HERALD_SMTP_URL", url)
            .args(["send-test-email", "--to", "ops@example.com"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        smtp.last_to("ops@example.com")
            .unwrap()
            .data
            .contains("Mail works.")
    );
    let bad = Command::new(BIN)
        .args(["send-test-email", "--to", "not an address"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--to"));
}

/// A value from a request cannot forge a log line: an email typed at sign-in that
/// holds a line break and a fake audit line shows up escaped, on one line.
async fn request_values_are_escaped_in_the_log(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(engine, dir.path()).await else {
        return;
    };
    let env = env_for(&db, engine);
    let herald = Herald::start(dir.path(), &refs(&env));
    let forged = "x\n2026-11-27T00:00:00.000000Z  INFO herald::audit: audit audit=\"signin.succeeded\" actor=admin@localhost";
    let r = sign_in_at(&browser(), &herald.address, forged, "not the password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let output = herald.stop();
    assert!(
        !output
            .lines()
            .any(|l| l.starts_with("2026-11-27T00:00:00.000000Z")),
        "a forged line reached the log:\n{output}"
    );
    assert!(
        !output.contains('\u{1b}'),
        "a terminal escape reached the log"
    );
    let escaped = output
        .lines()
        .find(|l| l.contains("signin.failed"))
        .unwrap_or_else(|| panic!("no audit line for the failure:\n{output}"));
    assert!(
        escaped.contains("actor=\"x\\n2026-11-27t00:00:00.000000z"),
        "{escaped}"
    );
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_values_are_escaped_in_the_log_sqlite() {
    request_values_are_escaped_in_the_log(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_values_are_escaped_in_the_log_postgres() {
    request_values_are_escaped_in_the_log(Engine::Postgres).await;
}

/// `herald backup` on SQLite writes a copy and never overwrites; on PostgreSQL it
/// points to pg_dump.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Herald's data folder and every file it writes there (the database and its WAL,
/// the key, the outbox's emails, backups) are its user's alone; a folder an older
/// version left readable by others is tightened at start, with a log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_files_are_readable_by_herald_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Left by an older version: a folder and a file others can read.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("old.eml"), "Password: hunter2").unwrap();
    std::fs::set_permissions(data.join("old.eml"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let herald = Herald::start(dir.path(), &[]);
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["send-test-email", "--to", "ops@example.com"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let backup = Command::new(BIN)
        .current_dir(dir.path())
        .args(["backup", "--to", "data/copy.db"])
        .output()
        .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    let logs = herald.stop();
    assert!(logs.contains("now readable by this user only"), "{logs}");
    assert_eq!(mode(&data), 0o700);
    let outbox = data.join("outbox");
    assert_eq!(mode(&outbox), 0o700);
    let mut files = vec![
        data.join("herald.db"),
        data.join("secret_key"),
        data.join("old.eml"),
        data.join("copy.db"),
    ];
    files.extend(
        std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().path()),
    );
    for extra in ["herald.db-wal", "herald.db-shm"] {
        if data.join(extra).exists() {
            files.push(data.join(extra));
        }
    }
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

async fn backup_command(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = TestDb::create(engine, dir.path()).await else {
        return;
    };
    let run = |to: &str| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir.path()).args(["backup", "--to", to]);
        for (k, v) in env_for(&db, engine) {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let migrated = Command::new(BIN)
        .current_dir(dir.path())
        .arg("migrate")
        .envs(env_for(&db, engine))
        .status()
        .unwrap();
    assert!(migrated.success());
    let (ok, text) = run("copy.db");
    if engine == Engine::Postgres {
        assert!(!ok && text.contains("pg_dump"), "{text}");
    } else {
        assert!(ok, "{text}");
        assert!(text.contains("To restore: stop Herald"), "{text}");
        let size = std::fs::metadata(dir.path().join("copy.db")).unwrap().len();
        assert!(size > 0);
        let (ok, text) = run("copy.db");
        assert!(!ok && text.contains("already exists"), "{text}");
        assert_eq!(
            std::fs::metadata(dir.path().join("copy.db")).unwrap().len(),
            size
        );
    }
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_command_sqlite() {
    backup_command(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_command_postgres() {
    backup_command(Engine::Postgres).await;
}

/// Every log line is one logfmt record (`time`, `level`, `target`, `msg`, fields,
/// then the fields of its spans as `request_id` …) or, with `log_format = json`,
/// one JSON object with the same names; the first-start password is on the
/// console only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_are_logfmt_or_json_with_time_and_request_id() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let herald = Herald::start(
            dir.path(),
            &[("HERALD_LOG_FORMAT", format), ("HERALD_LOG", "info")],
        );
        let r = reqwest::get(format!("{}/login", herald.address))
            .await
            .unwrap();
        let id = r
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(r.status(), StatusCode::OK);
        let password_line = herald.stdout_line(|l| l.starts_with("First start"));
        let password = password_line.rsplit(' ').next().unwrap().to_string();
        let stderr = herald.stderr.clone();
        herald.stop();
        let log: Vec<String> = stderr.lock().unwrap().clone();
        assert!(!log.is_empty());
        assert!(
            !log.iter().any(|l| l.contains(&password)),
            "the password reached the log"
        );
        let mut request_lines = 0;
        for line in &log {
            let fields: std::collections::HashMap<String, String> = if format == "json" {
                let v: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                v.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            } else {
                logfmt(line).unwrap_or_else(|| panic!("not logfmt: {line}"))
            };
            for key in ["time", "level", "target", "msg"] {
                assert!(fields.contains_key(key), "no {key} in {line}");
            }
            assert!(fields["time"].parse::<jiff::Timestamp>().is_ok(), "{line}");
            if fields["msg"] == "request"
                && fields.get("request_path").map(String::as_str) == Some("/login")
            {
                request_lines += 1;
                assert_eq!(fields.get("request_id"), id.as_ref(), "{line}");
                assert_eq!(fields["status"], "200");
            }
        }
        assert_eq!(request_lines, 1, "{format}: {log:?}");
        assert!(
            log.iter()
                .any(|l| l.contains("Herald is listening on http://")),
            "{log:?}"
        );
    }
}

/// A logfmt line as key → value (quoted values unescaped); `None` when the line is
/// not logfmt.
fn logfmt(line: &str) -> Option<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    let mut chars = line.chars().peekable();
    loop {
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ' ')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ' ')));
        }
        out.insert(key, value);
        match chars.next() {
            None => return Some(out),
            Some(' ') => {}
            Some(_) => return None,
        }
    }
}

/// `herald healthcheck` exits 0 while the Herald at `bind` answers `/healthz`, and
/// non-zero with a reason once it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_says_whether_herald_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bind = format!("127.0.0.1:{port}");
    let herald = Herald::start(dir.path(), &[("HERALD_BIND", bind.as_str())]);
    let check = || {
        Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .env("HERALD_BIND", &bind)
            .arg("healthcheck")
            .output()
            .unwrap()
    };
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    herald.stop();
    let out = check();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not healthy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Clicks answered while Herald stops on SIGTERM are all written before it exits:
/// the writer that records them without the redirect waiting is flushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_click_answered_before_sigterm_is_recorded() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let secret = "a secret key for this test only, long enough to be one";
    let herald = Herald::start(dir.path(), &[("HERALD_SECRET_KEY", secret)]);
    let base = herald.address.clone();
    // A tracked email, as a send leaves it, and the token of its one link.
    let db_url = format!("sqlite://{}", dir.path().join("data/herald.db").display());
    let mut db = sqlx::SqliteConnection::connect(&db_url).await.unwrap();
    let reference = "0123456789abcdef0123";
    sqlx::query(
        "INSERT INTO deliveries (reference, kind, address, smtp_message_id, sent_at, links) \
         VALUES ($1, 'message', 'ada@example.com', '<x@y>', $2, '[\"https://example.com/a\"]')",
    )
    .bind(reference)
    .bind(crate::processes::now_ms() - 60_000)
    .execute(&mut db)
    .await
    .unwrap();
    let key = actix_web::cookie::Key::derive_from(secret.as_bytes());
    let token = herald::tracking::Tokens::new(key.master()).click(reference, 0);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{base}/l/{token}");
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::FOUND
    );
    // Many clicks at once; SIGTERM while they are being answered.
    let clicks: Vec<_> = (0..400)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::FOUND)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    herald.terminate();
    let mut answered = 1;
    for c in clicks {
        answered += i64::from(c.await.unwrap());
    }
    herald.exited();
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clicks")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert!(answered > 1, "some clicks were answered");
    assert_eq!(kept, answered, "every click answered is recorded");
}
