//! The test harness: a real Herald per test (fresh SQLite file, or a fresh
//! PostgreSQL database when `HERALD_TEST_POSTGRES_URL` is set), a cookie-keeping
//! client, and one method per user action.

use std::future::Future;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::web;
use herald::accounts::NewUser;
use herald::app::Application;
use herald::auth::users::{self, Role};
use herald::auth::{Plaintext, Priority};
use herald::clock::{Clock, ManualClock};
use herald::config::{Config, Secret};
use herald::state::AppState;
use herald::types::{EmailAddress, PersonName};
use reqwest::{Client, Response, StatusCode, header};
use scraper::{Html, Selector};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Says once per run, plainly, that a part of the suite is not running here and
/// how to run it (CI runs everything: there the missing part fails instead).
pub fn skipped_once(what: &'static str, how: &str) {
    static SAID: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if !said.contains(&what) {
        said.push(what);
        // Straight to the terminal: the test harness keeps `eprintln!` of passing
        // tests to itself.
        use std::io::Write;
        let _ = write!(
            std::io::stderr(),
            "\nNOTE: {what} tests are SKIPPED in this run: {how}\n\n"
        );
    }
}

/// Fails the test unless Prometheus's own checker, `promtool check metrics`,
/// finds `metrics` clean (it is skipped, once said, where promtool is missing and
/// CI is not set).
pub fn assert_promtool_accepts(metrics: &str) {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but promtool cannot start ({e}): apt-get install prometheus")
        }
        Err(_) => {
            return skipped_once("promtool", "apt-get install prometheus to run them");
        }
    };
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(metrics.as_bytes()).expect("promtool reads");
    drop(stdin);
    let out = child.wait_with_output().expect("promtool ends");
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{metrics}"
    );
}

/// A database for one test; a PostgreSQL one is dropped when this is — at the
/// end of the test, or while a failing test unwinds.
pub struct TestDb {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is not configured (outside CI).
    pub async fn create(engine: Engine, dir: &std::path::Path) -> Option<Self> {
        match engine {
            Engine::Sqlite => Some(Self {
                url: format!("sqlite://{}", dir.join("herald.db").display()),
                postgres: None,
            }),
            Engine::Postgres => {
                let Ok(admin_url) = std::env::var("HERALD_TEST_POSTGRES_URL") else {
                    if std::env::var("CI").is_ok_and(|v| v == "true") {
                        panic!(
                            "CI=true but HERALD_TEST_POSTGRES_URL is not set: PostgreSQL tests must run in CI"
                        );
                    }
                    skipped_once(
                        "PostgreSQL",
                        "set HERALD_TEST_POSTGRES_URL (README, Two commands) to run each test on PostgreSQL too",
                    );
                    return None;
                };
                let name = format!("herald_t_{}", random_hex(8));
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at HERALD_TEST_POSTGRES_URL is not reachable: {e}")
                    });
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url =
                    url::Url::parse(&admin_url).expect("HERALD_TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                Some(Self {
                    url: url.to_string(),
                    postgres: Some((admin_url, name)),
                })
            }
        }
    }

    /// The PostgreSQL database's name, for a test that looks for it.
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|(_, name)| name.as_str())
    }

    pub async fn drop_database(&self) {
        if let Some((admin_url, name)) = &self.postgres {
            drop_postgres(admin_url, name).await;
        }
    }
}

async fn drop_postgres(admin_url: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

impl Drop for TestDb {
    /// Drops the PostgreSQL database — also when the test panicked — on a thread
    /// of its own (a destructor cannot wait on the test's runtime).
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            let dropped = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to drop the test database")
                    .block_on(drop_postgres(&admin_url, &name));
            });
            let _ = dropped.join();
        }
    }
}

pub fn random_hex(bytes: usize) -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A running Herald and a browser-like client for it.
pub struct TestApp {
    pub address: String,
    /// The first admin's email and the temporary password printed at the first start.
    pub first_admin: Option<(String, String)>,
    pub client: Client,
    pub clock: Arc<ManualClock>,
    pub state: web::Data<AppState>,
    /// The port bounces and complaints are received on, when configured.
    pub inbound_port: Option<u16>,
    handle: ServerHandle,
    db: Arc<TestDb>,
    _dir: tempfile::TempDir,
}

/// The `/metrics` token of tests that read metrics.
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// A client that keeps cookies and does not follow redirects (tests look at them).
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn test_config(database_url: &str, data_dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.database_url = Secret::from(database_url);
    config.data_dir = data_dir.to_path_buf();
    config.hash_threads = 2;
    config.workers = 2;
    config
}

/// A change to the tests' configuration, made before the app starts.
type ConfigChange = Box<dyn FnOnce(&mut Config)>;

/// How a test's Herald is made — the one way: `TestApp::on(engine)`, then the
/// configuration changes and the jobs it needs, then `run(test)` (the app for the
/// test, stopped and its database dropped after it) or `spawn()` (the app, kept).
pub struct AppBuilder {
    engine: Engine,
    configure: Vec<ConfigChange>,
    jobs: herald::jobs::registry::Registry,
}

impl TestApp {
    /// A Herald on `engine` with the tests' configuration and the product's jobs.
    pub fn on(engine: Engine) -> AppBuilder {
        AppBuilder {
            engine,
            configure: Vec::new(),
            jobs: herald::jobs::catalogue::standard(),
        }
    }
}

impl AppBuilder {
    /// Changes the configuration before the app starts.
    pub fn configure(mut self, change: impl FnOnce(&mut Config) + 'static) -> Self {
        self.configure.push(Box::new(change));
        self
    }

    /// Runs these jobs instead of the product's (a test may register its own).
    pub fn jobs(mut self, jobs: herald::jobs::registry::Registry) -> Self {
        self.jobs = jobs;
        self
    }

    /// Runs `test` against the app; a skipped PostgreSQL run returns at once.
    pub async fn run<F, Fut>(self, test: F)
    where
        F: FnOnce(TestApp) -> Fut,
        Fut: Future<Output = ()>,
    {
        let Some(app) = self.spawn().await else {
            return;
        };
        let handle = app.handle.clone();
        // Held here too: the database outlives the app's shutdown, and is dropped
        // with this guard — after a test that passed, or while one that failed
        // unwinds.
        let db = Arc::clone(&app.db);
        let state = app.state.clone();
        test(app).await;
        handle.stop(false).await;
        state.db.close().await;
        drop(db);
    }

    /// The app, running until the test ends; `None` when PostgreSQL is not set up.
    pub async fn spawn(self) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = TestDb::create(self.engine, dir.path()).await?;
        let mut config = test_config(&db.url, dir.path());
        for change in self.configure {
            change(&mut config);
        }
        let clock = ManualClock::new(jiff::Timestamp::now());
        let app = Application::build_with(config, clock.clone(), self.jobs)
            .await
            .expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let first_admin = app
            .first_admin
            .as_ref()
            .map(|a| (a.email.clone(), a.password.expose().to_string()));
        let state = app.state();
        let handle = app.handle();
        let inbound_port = app.inbound_port();
        tokio::spawn(app.run_until_stopped());
        Some(TestApp {
            address,
            first_admin,
            client: browser(),
            clock,
            state,
            inbound_port,
            handle,
            db: Arc::new(db),
            _dir: dir,
        })
    }
}

/// A form as a page shows it: where it posts and its fields with their values.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.to_string(), value.to_string()));
        self
    }
    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.fields.retain(|(k, _)| k != name);
        self
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Finds the form posting to `action` in `html` and reads its fields.
pub fn find_form(html: &str, action: &str) -> Form {
    let doc = Html::parse_document(html);
    let form_sel = Selector::parse(&format!("form[action=\"{action}\"]")).unwrap();
    let form = doc
        .select(&form_sel)
        .next()
        .unwrap_or_else(|| panic!("no form posting to {action} in:\n{html}"));
    let mut fields = Vec::new();
    let input = Selector::parse("input[name]").unwrap();
    for el in form.select(&input) {
        let v = el.value();
        let kind = v.attr("type").unwrap_or("text");
        if matches!(kind, "checkbox" | "radio") && v.attr("checked").is_none() {
            continue;
        }
        if matches!(kind, "submit" | "button") {
            continue;
        }
        // Browsers send "on" for a checkbox without a value.
        let default = if matches!(kind, "checkbox" | "radio") {
            "on"
        } else {
            ""
        };
        fields.push((
            v.attr("name").unwrap().to_string(),
            v.attr("value").unwrap_or(default).to_string(),
        ));
    }
    let select = Selector::parse("select[name]").unwrap();
    let option = Selector::parse("option").unwrap();
    for el in form.select(&select) {
        let options: Vec<_> = el.select(&option).collect();
        let chosen = options
            .iter()
            .find(|o| o.value().attr("selected").is_some())
            .or(options.first());
        if let Some(o) = chosen {
            let value = o
                .value()
                .attr("value")
                .map(str::to_string)
                .unwrap_or_else(|| o.text().collect());
            fields.push((el.value().attr("name").unwrap().to_string(), value));
        }
    }
    let textarea = Selector::parse("textarea[name]").unwrap();
    for el in form.select(&textarea) {
        fields.push((
            el.value().attr("name").unwrap().to_string(),
            el.text().collect(),
        ));
    }
    Form {
        action: action.to_string(),
        fields,
    }
}

/// The text of the first element matching `selector`.
pub fn text_of(html: &str, selector: &str) -> Option<String> {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(selector).unwrap();
    doc.select(&sel)
        .next()
        .map(|e| e.text().collect::<String>().trim().to_string())
}

pub fn location(resp: &Response) -> String {
    resp.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

impl TestApp {
    /// The test database's URL.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// The test's PostgreSQL database, if it runs on PostgreSQL.
    pub fn postgres_database(&self) -> Option<String> {
        self.db.postgres_name().map(str::to_string)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get_with(&self, client: &Client, path: &str) -> Response {
        client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_with(&self.client, path).await
    }

    /// GET a page and return its status and HTML.
    pub async fn page_with(&self, client: &Client, path: &str) -> (StatusCode, String) {
        let r = self.get_with(client, path).await;
        (r.status(), r.text().await.unwrap())
    }

    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        self.page_with(&self.client, path).await
    }

    /// Loads `page`, finds the form posting to `action`.
    pub async fn form_with(&self, client: &Client, page: &str, action: &str) -> Form {
        let (status, html) = self.page_with(client, page).await;
        assert!(status.is_success(), "GET {page} answered {status}:\n{html}");
        find_form(&html, action)
    }

    /// Creates a group through its form with these values; a new group asks for
    /// double opt-in unless `double_opt_in` is false (the box unticked). Its id.
    pub async fn new_group(
        &self,
        client: &Client,
        values: &[(&str, &str)],
        double_opt_in: bool,
    ) -> i64 {
        let mut form = self.form_with(client, "/groups/new", "/groups").await;
        assert_eq!(
            form.get("double_opt_in"),
            Some("on"),
            "a new group asks for double opt-in unless unticked"
        );
        for (k, v) in values {
            form.set(k, v);
        }
        if !double_opt_in {
            form.remove("double_opt_in");
        }
        let r = self.post_form_with(client, &form).await;
        assert_eq!(
            r.status(),
            reqwest::StatusCode::SEE_OTHER,
            "creating a group"
        );
        let name = form.get("name").unwrap_or_default().trim().to_string();
        herald::contacts::groups::list(&self.state.db)
            .await
            .unwrap()
            .into_iter()
            .find(|g| g.name == name)
            .expect("the new group")
            .id
    }

    pub async fn post_form_with(&self, client: &Client, form: &Form) -> Response {
        client
            .post(self.url(&form.action))
            .form(&form.fields)
            .send()
            .await
            .expect("POST")
    }

    /// Loads `page`, fills the form posting to `action` with `values` and submits it
    /// (with the CSRF token the page holds).
    pub async fn submit_with(
        &self,
        client: &Client,
        page: &str,
        action: &str,
        values: &[(&str, &str)],
    ) -> Response {
        let mut form = self.form_with(client, page, action).await;
        // A name given once replaces the page's value; given again, it adds one
        // (several checked boxes of one name).
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in values {
            if seen.contains(k) {
                form.fields.push((k.to_string(), v.to_string()));
            } else {
                form.set(k, v);
                seen.push(k);
            }
        }
        self.post_form_with(client, &form).await
    }

    pub async fn submit(&self, page: &str, action: &str, values: &[(&str, &str)]) -> Response {
        self.submit_with(&self.client, page, action, values).await
    }

    /// Signs a contact in to the preference center in `client`.
    pub async fn contact_sign_in(&self, client: &Client, email: &str, password: &str) -> Response {
        self.submit_with(
            client,
            "/preferences/login",
            "/preferences/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn sign_in_with(&self, client: &Client, email: &str, password: &str) -> Response {
        self.submit_with(
            client,
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Response {
        self.sign_in_with(&self.client, email, password).await
    }

    /// Creates an enabled system user with a permanent password, directly in the store.
    pub async fn create_user(&self, email: &str, role: Role, password: &str) -> i64 {
        let state = &self.state;
        let now = state.clock.now_ms();
        let new = NewUser {
            email: EmailAddress::parse(email).unwrap(),
            name: PersonName::parse(&format!("{} Test", role.label())).unwrap(),
            role,
        };
        let actor = herald::audit::Actor::named("test");
        let (id, _temp) =
            herald::accounts::create_user(&state.db, &state.hasher, now, &new, &actor, "")
                .await
                .expect("create user");
        let hash = state
            .hasher
            .hash(&Plaintext::new(password), Priority::Interactive)
            .await
            .unwrap();
        let mut tx = state.db.begin().await.unwrap();
        users::set_password(&mut tx, id, &hash, now).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// A new client signed in as a fresh user of `role`; returns it and the email.
    pub async fn signed_in(&self, role: Role) -> (Client, String) {
        let email = format!("{}-{}@example.com", role.code(), random_hex(4));
        self.create_user(&email, role, "a good long password").await;
        let client = browser();
        let r = self
            .sign_in_with(&client, &email, "a good long password")
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "sign-in as {email} failed"
        );
        (client, email)
    }

    /// Every text value stored in the database, for "no secret stored" checks.
    pub async fn all_stored_text(&self) -> String {
        let db = &self.state.db;
        let mut out = String::new();
        for (table, cols) in [
            (
                "system_users",
                "email || ' ' || name || ' ' || COALESCE(password_hash, '') || ' ' || COALESCE(temp_hash, '')",
            ),
            ("sessions", "id_hash || ' ' || state"),
            (
                "audit_log",
                "actor || ' ' || action || ' ' || target || ' ' || detail",
            ),
            ("signin_failures", "account || ' ' || ip"),
            ("settings", "key || ' ' || value"),
        ] {
            let rows: Vec<(String,)> =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {cols} FROM {table}")))
                    .fetch_all(db.read())
                    .await
                    .unwrap();
            for (text,) in rows {
                out.push_str(&text);
                out.push('\n');
            }
        }
        out
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// An import's state, as its status endpoint reports it.
#[derive(Debug, serde::Deserialize)]
pub struct ImportStatus {
    pub id: i64,
    pub status: String,
    pub total_rows: i64,
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub rejected: i64,
}

impl TestApp {
    /// Uploads a CSV through the import form; returns the response.
    pub async fn upload_csv(
        &self,
        client: &Client,
        file: Vec<u8>,
        group_id: Option<i64>,
        fire_registered: bool,
    ) -> Response {
        let group = group_id.map(|g| g.to_string()).unwrap_or_default();
        let mut fields = vec![("group_id", group.as_str())];
        if fire_registered {
            fields.push(("fire_registered", "on"));
        }
        self.upload_csv_with(client, file, &fields).await
    }

    /// Uploads `file` on the import page with these other fields.
    pub async fn upload_csv_with(
        &self,
        client: &Client,
        file: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> Response {
        let (status, html) = self.page_with(client, "/contacts/import").await;
        assert_eq!(status, StatusCode::OK);
        let action = {
            let doc = Html::parse_document(&html);
            let sel = Selector::parse("form[enctype=\"multipart/form-data\"]").unwrap();
            doc.select(&sel)
                .next()
                .expect("upload form")
                .value()
                .attr("action")
                .unwrap()
                .to_string()
        };
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(file)
                .file_name("contacts.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        client
            .post(self.url(&action))
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    pub async fn import_csv(
        &self,
        client: &Client,
        file: &str,
        group_id: Option<i64>,
        fire_registered: bool,
    ) -> ImportStatus {
        let r = self
            .upload_csv(client, file.as_bytes().to_vec(), group_id, fire_registered)
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "upload refused: {}",
            r.text().await.unwrap()
        );
        let page = location(&r);
        let started = std::time::Instant::now();
        loop {
            let status: ImportStatus = client
                .get(self.url(&format!("{page}/status")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status.status != "running" {
                return status;
            }
            assert!(started.elapsed().as_secs() < 60, "import did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// How many events of `kind` are stored, once there are at least `n` (some are
    /// recorded after the answer, e.g. a new password request): waits up to 30 s.
    pub async fn events_of(&self, kind: &str, n: usize) -> usize {
        let started = std::time::Instant::now();
        loop {
            let count = self.events().await.iter().filter(|e| e.0 == kind).count();
            if count >= n || started.elapsed().as_secs() >= 30 {
                return count;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The stored events, oldest first, as (type code, contact id, group id, params).
    pub async fn events(&self) -> Vec<(String, Option<i64>, Option<i64>, serde_json::Value)> {
        let mut all = herald::intake::events::latest(&self.state.db, 100_000)
            .await
            .unwrap();
        all.reverse();
        // Without the sign-ins and creations of the tests' own staff accounts.
        all.into_iter()
            .filter(|e| {
                !matches!(
                    e.kind.as_str(),
                    "logged_on_to_system" | "system_user_created"
                )
            })
            .map(|e| (e.kind.clone(), e.contact_id, e.group_id, e.params_json()))
            .collect()
    }
}

impl TestApp {
    /// Moves the clock and wakes the scheduler (as real time passing would).
    pub fn advance(&self, by: std::time::Duration) {
        self.clock.advance(by);
        self.state.db.wake_scheduler();
    }

    /// Waits until no run is due-and-pending or running (what the scheduler can do
    /// now is done).
    pub async fn drain_due_runs(&self) {
        let started = std::time::Instant::now();
        loop {
            self.state.db.wake_scheduler();
            let busy: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM job_runs WHERE (status = 'pending' AND due_at <= $1) OR status = 'running'",
            )
            .bind(self.now_ms())
            .fetch_one(self.state.db.read())
            .await
            .unwrap();
            if busy == 0 {
                return;
            }
            // Longer than one attempt may take (the job deadline, 60 s), so a slow
            // machine does not fail a test; the runs still busy are named if it does.
            if started.elapsed().as_secs() >= 90 {
                let stuck: Vec<(i64, String, i64, i64, Option<String>)> = sqlx::query_as(
                    "SELECT id, status, attempts, due_at, last_error FROM job_runs \
                     WHERE (status = 'pending' AND due_at <= $1) OR status = 'running'",
                )
                .bind(self.now_ms())
                .fetch_all(self.state.db.read())
                .await
                .unwrap();
                panic!(
                    "runs did not finish within 90 s (now {}): {stuck:?}",
                    self.now_ms()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
