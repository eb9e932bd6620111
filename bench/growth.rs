//! Memory and growth: Herald's resident memory and the time of one claim of 128
//! due runs, with 10,000 / 100,000 / 1,000,000 runs pending (due next week, so they
//! wait) — flat is the target (within 2×).
//!
//! cargo build --release --bin herald && cargo run --release --example bench-growth -- [database-url] [largest]
//! e.g. postgres://postgres@127.0.0.1:5432/herald_bench 1000000

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

use std::time::Instant;

use herald::automations::time_frame::{Delay, DelayUnit};
use herald::automations::wizard::JobChoice;
use herald::clock::{Clock, SystemClock};
use herald::db::Db;
use herald::events::catalogue::EventType;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = common::scratch("growth")?;
    let url = common::database_url(args.get(1), &dir.join("herald.db"));
    let largest: usize = args.get(2).map_or(Ok(1_000_000), |s| s.parse())?;
    // target/release/examples/bench-growth → target/release/herald
    let binary = common::sibling("../herald")?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    // Every event gives one run due in a week: they wait, as a large backlog does.
    let job = JobChoice {
        kind: "send_message_to_address".into(),
        target: None,
        config: serde_json::json!({ "message_id": 0, "addresses": [] }),
        delay: Delay::new(DelayUnit::Weeks, 1),
    };
    let event = EventType::ExternalHttpRequestReceived;
    common::active_automation(&db, "Growth", event, "UTC", job, now).await?;
    println!("database: {url}");
    println!(
        "| pending runs | RSS with Herald started (MiB) | one claim of 128 due runs (ms, median of 5) |"
    );
    println!("| --- | --- | --- |");
    let mut pending = 0;
    let mut rows = Vec::new();
    for target in [10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|n| *n <= largest)
    {
        common::http_request_events(&db, target - pending, "growth").await?;
        pending = target;
        // Herald's own binary, started as `herald serve`, idle on this backlog.
        let mut herald = std::process::Command::new(&binary)
            .env("HERALD_DATABASE_URL", &url)
            .env("HERALD_BIND", "127.0.0.1:0")
            .env("HERALD_DATA_DIR", &dir)
            .env("HERALD_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        let rss = common::memory_mib(herald.id(), "VmRSS:");
        // As on shutdown: SIGTERM, and the lock on the SQLite scheduler is given back.
        std::process::Command::new("kill")
            .args(["-TERM", &herald.id().to_string()])
            .status()?;
        herald.wait()?;
        // One claim among the backlog: 128 runs due now, claimed and put back.
        let mut times = Vec::new();
        for round in 0..5 {
            sqlx::query(
                "UPDATE job_runs SET due_at = $1 WHERE id IN (SELECT id FROM job_runs WHERE status = 'pending' ORDER BY id LIMIT 128)",
            )
            .bind(SystemClock.now_ms() - 1)
            .execute(db.write())
            .await?;
            let owner = format!("growth-{round}");
            let started = Instant::now();
            let claimed =
                herald::scheduler::queue::claim(&db, SystemClock.now_ms(), &owner, 128).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(claimed.len() == 128, "claimed {}", claimed.len());
            herald::scheduler::queue::release(&db, &owner).await?;
            sqlx::query("UPDATE job_runs SET due_at = $1, attempts = 0 WHERE status = 'pending' AND due_at < $2")
                .bind(SystemClock.now_ms() + 7 * 86_400_000)
                .bind(SystemClock.now_ms())
                .execute(db.write())
                .await?;
        }
        times.sort_by(f64::total_cmp);
        println!(
            "| {pending} | {rss:.0} | {:.2} (min {:.2}, max {:.2}) |",
            times[2], times[0], times[4]
        );
        rows.push(serde_json::json!({ "pending": pending, "rss_mib": rss, "claim_ms": times[2] }));
    }
    db.close().await;
    let result = serde_json::json!({
        "engine": common::engine(&url),
        "rows": rows,
    });
    println!("RESULT {result}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
