//! What several benchmark programs set up the same way: an active automation of
//! one job (every day, no end, started an hour ago), and a backlog of
//! *External HTTP Request Received (S)* events recorded through intake.

use herald::automations::model::{EventFilter, State};
use herald::automations::store;
use herald::automations::time_frame::{ALL_DAYS, HolidayRule, Hours};
use herald::automations::wizard::{EventPart, JobChoice, TimeFramePart};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use herald::clock::{Clock, SystemClock};
use herald::db::{Db, Tx};
use herald::events::catalogue::{EventType, NewEvent};

/// Creates `name`, on `event`, running `job` in `zone`, and activates it.
pub async fn active_automation(
    db: &Db,
    name: &str,
    event: EventType,
    zone: &str,
    job: JobChoice,
    now: i64,
) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    create_active(&mut tx, name, event, zone, &job, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates `count` active automations in UTC named `name 1`, `name 2` …, 500 per
/// transaction.
#[allow(dead_code)]
pub async fn active_automations(
    db: &Db,
    name: &str,
    event: EventType,
    job: &JobChoice,
    count: i64,
    now: i64,
) -> anyhow::Result<()> {
    for start in (0..count).step_by(500) {
        let mut tx = db.begin().await?;
        for i in start..(start + 500).min(count) {
            let name = format!("{name} {}", i + 1);
            create_active(&mut tx, &name, event, "UTC", job, now).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

async fn create_active(
    tx: &mut Tx,
    name: &str,
    event: EventType,
    zone: &str,
    job: &JobChoice,
    now: i64,
) -> anyhow::Result<()> {
    let part = EventPart {
        name: name.into(),
        description: String::new(),
        event,
        filter: EventFilter::Any,
        selection: vec![],
    };
    let frame = TimeFramePart {
        start_at: now - 3_600_000,
        time_zone: zone.into(),
        end_at: None,
        days: ALL_DAYS,
        hours: Hours::ALL_DAY,
        holidays: HolidayRule::Always,
        notify: vec![],
        notify_days_before: 30,
    };
    let id = store::create(tx, 1, &part, "UTC", now).await?;
    store::save_job(tx, id, job, now).await?;
    store::save_time_frame(tx, id, &frame, now).await?;
    store::set_state(tx, id, State::Active, now).await?;
    Ok(())
}

/// Records `n` *External HTTP Request Received (S)* events named `name`, 1,000 per
/// transaction, with the runs intake gives them.
pub async fn http_request_events(db: &Db, n: usize, name: &str) -> anyhow::Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<NewEvent> = chunk
            .iter()
            .map(|i| NewEvent {
                kind: EventType::ExternalHttpRequestReceived,
                contact_id: None,
                system_user_id: None,
                group_id: None,
                params: serde_json::json!({ "name": name, "data": { "n": i } }),
            })
            .collect();
        let mut tx = db.begin().await?;
        herald::intake::events::record_many(&mut tx, SystemClock.now_ms(), &events).await?;
        db.commit(tx).await?;
    }
    Ok(())
}

/// A process's `VmRSS` or `VmHWM` (peak), in MiB.
pub fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds a process has used so far, by thread name without its number
/// (`herald-hash-0` and `herald-hash-1` count as `herald-hash`), from
/// `/proc/<pid>/task`.
pub fn cpu_by_thread(pid: u32) -> BTreeMap<String, f64> {
    let mut spent = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return spent;
    };
    for stat in tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
    {
        // pid (comm) state ppid … utime stime: fields 14 and 15, counted after
        // the closing parenthesis (a name may hold spaces).
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        *spent.entry(name.to_string()).or_insert(0.0) += (ticks(11) + ticks(12)) / 100.0;
    }
    spent
}

/// What each thread name spent between two readings of [`cpu_by_thread`].
pub fn cpu_spent(
    before: &BTreeMap<String, f64>,
    after: BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .into_iter()
        .map(|(name, secs)| {
            let spent = secs - before.get(&name).copied().unwrap_or(0.0);
            (name, spent)
        })
        .collect()
}

/// CPU seconds the whole machine has been busy so far (`/proc/stat`: all but idle
/// and iowait).
pub fn machine_busy_s() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_string();
            let v: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal …
            let busy: f64 = v.iter().take(8).sum::<f64>() - v.get(3)? - v.get(4)?;
            Some(busy / 100.0)
        })
        .unwrap_or(0.0)
}

/// A temporary folder for this run of the program `name`.
pub fn scratch(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("herald-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The database: the URL given, or — none, or `-` — SQLite in `file`.
pub fn database_url(given: Option<&String>, file: &Path) -> String {
    given
        .filter(|s| *s != "-")
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", file.display()))
}

/// The engine behind `url`, as the results name it.
pub fn engine(url: &str) -> &'static str {
    if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// A sibling program of this one in the release build.
pub fn sibling(path: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let candidate = dir.join(path);
    anyhow::ensure!(
        candidate.is_file(),
        "{} is missing: build it first (bench/run does)",
        candidate.display()
    );
    Ok(candidate)
}

/// Herald's own release binary, started as `herald serve` in its own process.
pub struct Herald {
    child: std::process::Child,
    pub base: String,
}

impl Herald {
    /// Starts it on `url` and a free port, with `env` added; returns once `/readyz`
    /// answers.
    pub async fn start(url: &str, dir: &Path, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new(sibling("../herald")?)
            .env("HERALD_DATABASE_URL", url)
            .env("HERALD_BIND", format!("127.0.0.1:{port}"))
            .env("HERALD_DATA_DIR", dir)
            .env("HERALD_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let herald = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let probe = reqwest::Client::new();
        let started = std::time::Instant::now();
        loop {
            let ready = probe.get(format!("{}/readyz", herald.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(herald);
            }
            anyhow::ensure!(started.elapsed().as_secs() < 60, "Herald did not start");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as on shutdown, and waits for it to end.
    pub fn stop(mut self) -> anyhow::Result<()> {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// wrk -t2 -c64 for `seconds` (with a Lua `script`): requests/s, p99 in ms, the
/// non-2xx-or-3xx count and the requests made.
pub fn wrk(url: &str, script: Option<&Path>, seconds: u32) -> anyhow::Result<(f64, f64, u64, u64)> {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency"]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd.arg(url).output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("wrk printed: {text}"))?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| {
            let v = v.trim();
            let (n, scale) = if let Some(n) = v.strip_suffix("us") {
                (n, 0.001)
            } else if let Some(n) = v.strip_suffix("ms") {
                (n, 1.0)
            } else {
                (v.trim_end_matches('s'), 1000.0)
            };
            n.parse::<f64>().unwrap_or(f64::NAN) * scale
        })
        .unwrap_or(f64::NAN);
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    // "  123456 requests in 10.00s, 12.34MB read"
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0);
    Ok((rps, p99, errors, requests))
}

/// The bare actix-web reference (`bench-bare-api`) on `db_url` and a free port,
/// once it answers; kill it when done.
pub async fn start_bare(db_url: &str) -> anyhow::Result<(std::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let bare = std::process::Command::new(sibling("bench-bare-api")?)
        .args([db_url, &format!("127.0.0.1:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    while probe.get(format!("{base}/")).send().await.is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok((bare, base))
}
