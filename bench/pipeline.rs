//! The password pipeline: *Send New Password to Contact (C)* runs through a real
//! SMTP server over TCP, drained by Herald's own release binary (`herald serve`,
//! its own process) while a staff member's browser asks for the automations
//! overview, a contact search and the dashboard in a loop — on a database of
//! 1,000,000 contacts and 10,000 automations. Beside it, in the same run, the
//! reference: raw argon2id on the same cores (`bench-argon2`, 2 threads, reused
//! memory block), before and after.
//!
//! cargo build --release --bin herald --example bench-argon2 &&
//! cargo run --release --example bench-pipeline -- [database-url] [runs] [contacts] [automations] [pause-ms]
//!
//! The database is kept between calls (seeding a million contacts takes minutes):
//! each call sends to contacts that have had no password yet. Prints one line
//! `RESULT {json}` for `bench/run`.

#[path = "common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/app/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use herald::auth::password::{PasswordHasher, Plaintext, Priority};
use herald::automations::model::Target;
use herald::automations::time_frame::{Delay, DelayUnit};
use herald::automations::wizard::JobChoice;
use herald::clock::{Clock, SystemClock};
use herald::db::Db;
use herald::events::catalogue::EventType;
use herald::jobs::send_new_password::TO_CONTACT_KIND;

const STAFF: &str = "pipeline-bench@example.com";
const STAFF_PASSWORD: &str = "pipeline bench password";

/// Raw argon2id hashes/s on 2 threads for 4 s (the reference program).
fn reference() -> anyhow::Result<f64> {
    let out = std::process::Command::new(common::sibling("bench-argon2")?)
        .args(["2", "4"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("hashes_per_s="))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bench-argon2 printed {text}"))
}

fn csrf(html: &str) -> anyhow::Result<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .ok_or_else(|| anyhow::anyhow!("no CSRF field"))?
        + marker.len();
    Ok(html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string())
}

/// p50 / p99 / max in ms and the count, of all pages and of each.
fn latency(times: &[Page]) -> serde_json::Value {
    let mut all = percentiles(times.iter().map(|(_, _, ms)| *ms).collect());
    for page in ["/automations", "/contacts?q=an", "/dashboard"] {
        all[page] = percentiles(
            times
                .iter()
                .filter(|(p, _, _)| *p == page)
                .map(|(_, _, ms)| *ms)
                .collect(),
        );
    }
    all
}

fn percentiles(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| {
        ms.get(((ms.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0.0)
    };
    serde_json::json!({ "n": ms.len(), "p50": at(0.50), "p99": at(0.99), "max": at(1.0) })
}

/// The five slowest pages: which, when (s after `from`) and how long (ms).
fn slowest(times: &[Page], from: Instant) -> serde_json::Value {
    let mut slowest_first: Vec<&Page> = times.iter().collect();
    slowest_first.sort_by(|a, b| b.2.total_cmp(&a.2));
    slowest_first
        .iter()
        .take(5)
        .map(|(page, at, ms)| {
            let at = at.checked_duration_since(from).map_or_else(
                || -(from.duration_since(*at).as_secs_f64()),
                |d| d.as_secs_f64(),
            );
            serde_json::json!({ "page": page, "at_s": at, "ms": ms })
        })
        .collect()
}

/// A page asked for: which, when it was asked for, how long it took (ms).
type Page = (&'static str, Instant, f64);

/// A signed-in staff member asking for three pages in a loop, `pause` apart,
/// until `stop`; every answer must be 200. Returns each page's time in ms.
async fn browse(base: String, pause: Duration, stop: Arc<AtomicBool>) -> anyhow::Result<Vec<Page>> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let signed_in = client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf(&page)?.as_str()),
            ("email", STAFF),
            ("password", STAFF_PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        signed_in.status().is_redirection(),
        "sign-in answered {}",
        signed_in.status()
    );
    let pages = ["/automations", "/contacts?q=an", "/dashboard"];
    let mut times = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let answer = client.get(format!("{base}{}", pages[i % 3])).send().await?;
        let status = answer.status();
        answer.bytes().await?;
        times.push((pages[i % 3], t, t.elapsed().as_secs_f64() * 1000.0));
        anyhow::ensure!(status.is_success(), "{} answered {status}", pages[i % 3]);
        i += 1;
        tokio::time::sleep(pause).await;
    }
    Ok(times)
}

/// Seeds what is missing: contacts, filler automations, the staff member and the
/// pipeline's automation.
async fn prepare(db: &Db, contacts: u64, automations: i64) -> anyhow::Result<()> {
    let now = SystemClock.now_ms();
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
        .fetch_one(db.read())
        .await?;
    if (have as u64) < contacts {
        let t = Instant::now();
        herald::contacts::demo::seed(db, now, contacts - have as u64).await?;
        eprintln!(
            "seeded {} contacts in {:.0} s",
            contacts - have as u64,
            t.elapsed().as_secs_f64()
        );
    }
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM automations")
        .fetch_one(db.read())
        .await?;
    if have < automations {
        // Automations of the other jobs on other events: the overview has a
        // long list, intake has more to look through, none of them fires here.
        let filler = JobChoice {
            kind: "send_message_to_address".into(),
            target: None,
            config: serde_json::json!({ "message_id": 0, "addresses": [] }),
            delay: Delay::new(DelayUnit::Weeks, 1),
        };
        let event = EventType::ExternalHttpRequestReceived;
        common::active_automations(db, "Filler", event, &filler, automations - have, now).await?;
        let password = PasswordHasher::start(1)
            .hash(&Plaintext::new(STAFF_PASSWORD), Priority::Interactive)
            .await?;
        sqlx::query("INSERT INTO system_users (email, name, role, password_hash, created_at, updated_at) VALUES ($1, 'Pipeline Bench', 'admin', $2, $3, $3)")
            .bind(STAFF)
            .bind(password)
            .bind(now)
            .execute(db.write())
            .await?;
        let job = JobChoice {
            kind: TO_CONTACT_KIND.into(),
            target: Some(Target::EventParameter),
            config: serde_json::Value::Null,
            delay: None,
        };
        let event = EventType::NewPasswordRequested;
        common::active_automation(db, "New password on request", event, "UTC", job, now).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = common::scratch("pipeline")?;
    // Kept between calls: seeding a million contacts takes minutes.
    let url = common::database_url(args.get(1), Path::new("/var/tmp/herald-bench-pipeline.db"));
    let runs: usize = args.get(2).map_or(Ok(2000), |s| s.parse())?;
    let contacts: u64 = args.get(3).map_or(Ok(1_000_000), |s| s.parse())?;
    let automations: i64 = args.get(4).map_or(Ok(10_000), |s| s.parse())?;
    // "none": no pages while the pipeline drains.
    let pages = args.get(5).is_none_or(|s| s != "none");
    let pause = Duration::from_millis(
        args.get(5)
            .filter(|_| pages)
            .map_or(Ok(100), |s| s.parse())?,
    );

    let db = Db::connect(&url).await?;
    db.migrate().await?;
    prepare(&db, contacts, automations).await?;
    // Runs an interrupted call left behind would be counted as this call's.
    sqlx::query("UPDATE job_runs SET status = 'cancelled' WHERE status IN ('pending', 'running')")
        .execute(db.write())
        .await?;
    // Drawn at random, as people who ask for a password are spread over the contact
    // base (the first ones by id would put every update of a run on the same pages).
    let targets: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM contacts WHERE temp_hash IS NULL AND status = 'active' ORDER BY random() LIMIT $1",
    )
    .bind(runs as i64)
    .fetch_all(db.read())
    .await?;
    anyhow::ensure!(
        targets.len() == runs,
        "only {} contacts left without a password: use a fresh database",
        targets.len()
    );

    let mut tx = db.begin().await?;
    let (_, key) =
        herald::api::keys::create(&mut tx, "pipeline benchmark", 1, SystemClock.now_ms()).await?;
    db.commit(tx).await?;
    let reference_before = reference()?;
    let mut server = smtp::SmtpServer::start().await;
    let smtp_url = server.url();
    let herald = common::Herald::start(&url, &dir, &[("HERALD_SMTP_URL", &smtp_url)]).await?;
    let (base, pid) = (herald.base.clone(), herald.pid());

    // Pages with nothing else running.
    let stop = Arc::new(AtomicBool::new(false));
    let idle = tokio::spawn(browse(base.clone(), pause, stop.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let idle_pages = idle.await??;
    let rss_idle = common::memory_mib(pid, "VmRSS:");

    // The pipeline, with the pages asked for all along.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = pages.then(|| tokio::spawn(browse(base.clone(), pause, stop.clone())));
    let machine_before = common::machine_busy_s();
    let cpu_before = common::cpu_by_thread(pid);
    let bench_before = common::cpu_by_thread(std::process::id());
    // Through the integration API's batch endpoint, as a shop would report them.
    let api = reqwest::Client::new();
    let recorded = Instant::now();
    for chunk in targets.chunks(1000) {
        let events: Vec<serde_json::Value> = chunk
            .iter()
            .map(|id| serde_json::json!({ "type": "new_password_requested", "contact": { "id": id } }))
            .collect();
        let answer = api
            .post(format!("{base}/api/v1/events/batch"))
            .bearer_auth(key.expose())
            .json(&serde_json::json!({ "events": events }))
            .send()
            .await?;
        anyhow::ensure!(
            answer.status().is_success(),
            "the batch was answered {}",
            answer.status()
        );
    }
    let mut first = None;
    let last = loop {
        let n = server.count();
        if n > 0 && first.is_none() {
            first = Some(recorded.elapsed());
        }
        if n >= runs {
            break recorded.elapsed();
        }
        anyhow::ensure!(
            recorded.elapsed() < Duration::from_secs(900),
            "only {n} of {runs} emails after 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let cpu = common::cpu_spent(&cpu_before, common::cpu_by_thread(pid));
    let machine = common::machine_busy_s() - machine_before;
    let bench_cpu: f64 =
        common::cpu_spent(&bench_before, common::cpu_by_thread(std::process::id()))
            .values()
            .sum();
    stop.store(true, Ordering::Relaxed);
    let busy_pages = match busy {
        Some(task) => task.await??,
        None => Vec::new(),
    };
    let rss_peak = common::memory_mib(pid, "VmHWM:");
    herald.stop()?;
    server.stop();
    let reference_after = reference()?;

    let done: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE job_kind = $1 AND status = 'done'")
            .bind(TO_CONTACT_KIND)
            .fetch_one(db.read())
            .await?;
    db.close().await;
    let first = first.unwrap_or_default().as_secs_f64();
    let last = last.as_secs_f64();
    let steady = (runs - 1) as f64 / (last - first);
    let reference = (reference_before + reference_after) / 2.0;
    // Where the CPU went while it drained: Herald's hashing threads, its other
    // threads, and this program (the SMTP server and the staff member's browser).
    let hashing = cpu.get("herald-hash").copied().unwrap_or(0.0);
    let other = cpu.values().sum::<f64>() - hashing;
    let result = serde_json::json!({
        "engine": common::engine(&url),
        "runs": runs,
        "runs_done_in_database": done,
        "contacts": contacts,
        "automations": automations,
        "page_pause_ms": pages.then_some(pause.as_millis() as u64),
        "runs_per_s": steady,
        "runs_per_s_from_commit": runs as f64 / last,
        "first_email_s": first,
        "reference_hashes_per_s": reference,
        "reference_before": reference_before,
        "reference_after": reference_after,
        "ratio": steady / reference,
        "pages_idle_ms": latency(&idle_pages),
        "pages_busy_ms": latency(&busy_pages),
        "slowest_pages_busy": slowest(&busy_pages, recorded),
        "rss_idle_mib": rss_idle,
        "wall_s": last,
        "cpu_hashing_s": hashing,
        "cpu_herald_other_s": other,
        "cpu_bench_s": bench_cpu,
        "cpu_machine_s": machine,
        "cpu_outside_herald_s": machine - hashing - other,
        "cpu_herald_by_thread_s": cpu,
        "hash_cpu_ms_per_run": hashing * 1000.0 / runs as f64,
        "other_cpu_ms_per_run": other * 1000.0 / runs as f64,
        "reference_cpu_ms_per_hash": 2000.0 / reference,
        "rss_peak_mib": rss_peak,
    });
    println!("RESULT {result}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
