//! Queue overhead: 20,000 runs of a no-op job drained by Herald's own scheduler
//! at its default settings (a benchmark-only job kind registered here through the
//! job trait — never in the product's catalogue), on SQLite or PostgreSQL.
//!
//! cargo run --release --example bench-queue -- [database-url] [runs] [floor]
//! e.g. postgres://postgres@127.0.0.1:5432/herald_bench 20000
//!
//! With `floor`, no scheduler runs: two loops call the queue's own claim and
//! completion (`queue::claim_due`, `queue::complete_many`) back to back, 128 runs a
//! round, as fast as the database answers — what the queue's statements cost on
//! this machine with none of Herald's own work (tasks, jobs, logging) around them.

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use herald::automations::wizard::JobChoice;
use herald::clock::{Clock, SystemClock};
use herald::config::{Config, Secret};
use herald::db::Db;
use herald::events::catalogue::{EventType, Scope};
use herald::jobs::registry::{Execution, Job};
use herald::scheduler::queue::{self, Claimed, Completed, Outcome, Target};
use herald::state::JobContext;

/// Does nothing, successfully: what is left is the queue's own cost.
struct NoOp;

impl Job for NoOp {
    type Settings = ();
    fn kind(&self) -> &'static str {
        "bench_noop"
    }
    fn label(&self) -> &'static str {
        "No-op (benchmark)"
    }
    fn scopes(&self) -> &'static [Scope] {
        &[Scope::System]
    }
    fn offered(&self) -> bool {
        false
    }
    fn execute<'a>(&'a self, _ctx: &'a JobContext, run: &'a Claimed) -> Execution<'a> {
        Box::pin(async move {
            Outcome::done(Target {
                kind: herald::scheduler::queue::RunFor::Automation,
                id: run.automation_id.0,
            })
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = common::scratch("queue")?;
    let url = common::database_url(args.get(1), &dir.join("herald.db"));
    let total: usize = args.get(2).map_or(Ok(20_000), |s| s.parse())?;
    let floor = args.get(3).is_some_and(|a| a == "floor");
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    // One automation of the no-op job on an (S) event; the runs come through intake.
    let job = JobChoice {
        kind: "bench_noop".into(),
        target: None,
        config: serde_json::Value::Null,
        delay: None,
    };
    let event = EventType::ExternalHttpRequestReceived;
    common::active_automation(&db, "Queue bench", event, "UTC", job, now).await?;
    common::http_request_events(&db, total, "bench").await?;
    println!("database: {url}; {total} no-op runs pending");
    if floor {
        return statements_alone(db, &url, total, dir).await;
    }
    db.close().await;

    // Herald as it runs in production: the application with its scheduler.
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse()?;
    config.database_url = Secret::from(url.clone());
    config.data_dir = dir.clone();
    let registry = herald::jobs::catalogue::standard().with(NoOp);
    let app =
        herald::app::Application::build_with(config, std::sync::Arc::new(SystemClock), registry)
            .await?;
    let state = app.state();
    let handle = app.handle();
    // Done runs are counted from the hourly counts (one row an hour): counting the
    // runs themselves every 5 ms read up to 20,000 rows a time beside the drain.
    let done_runs = async || -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(runs), 0) AS BIGINT) FROM run_hours WHERE status = 'done'",
        )
        .fetch_one(state.db.read())
        .await?)
    };
    let before = done_runs().await?;
    let started = Instant::now();
    let server = tokio::spawn(app.run_until_stopped());
    let mut first = None;
    loop {
        let done = done_runs().await? - before;
        if done > 0 && first.is_none() {
            first = Some((started.elapsed(), done));
        }
        if done as usize >= total {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "only {done} of {total} runs done after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let counted: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM job_runs WHERE job_kind = 'bench_noop' AND status = 'done'",
    )
    .fetch_one(state.db.read())
    .await?;
    anyhow::ensure!(
        counted as usize >= total,
        "{counted} runs done, {total} expected"
    );
    let (first_at, first_done) = first.unwrap_or_default();
    let steady = (total as i64 - first_done) as f64 / (secs - first_at.as_secs_f64());
    println!(
        "herald no-op runs: {:.0} runs/s ({total} in {secs:.2} s, start-up included); {steady:.0} runs/s after the first was done ({:.0} ms after start)",
        total as f64 / secs,
        first_at.as_secs_f64() * 1000.0
    );
    let result = serde_json::json!({
        "engine": common::engine(&url),
        "runs": total,
        "runs_per_s": total as f64 / secs,
        "steady_runs_per_s": steady,
        "first_done_ms": first_at.as_secs_f64() * 1000.0,
    });
    println!("RESULT {result}");
    handle.stop(true).await;
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The floor: the queue's statements alone, from two loops (Herald's worker also
/// keeps two going: its claims and its batched completions).
async fn statements_alone(
    db: Db,
    url: &str,
    total: usize,
    dir: std::path::PathBuf,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for i in 0..2 {
        let db = db.clone();
        loops.spawn(async move {
            let owner = format!("floor-{i}");
            let mut done = 0usize;
            loop {
                let claimed = queue::claim_due(&db, SystemClock.now_ms(), &owner, 128).await?;
                if claimed.is_empty() {
                    return anyhow::Ok(done);
                }
                let completed: Vec<Completed> = claimed
                    .iter()
                    .map(|run| Completed {
                        run: run.id,
                        target: Target {
                            kind: herald::scheduler::queue::RunFor::Automation,
                            id: run.automation_id.0,
                        },
                        sent: Vec::new(),
                        detail: None,
                        audit: None,
                    })
                    .collect();
                queue::complete_many(&db, SystemClock.now_ms(), &owner, &completed).await?;
                done += completed.len();
            }
        });
    }
    let mut done = 0;
    while let Some(n) = loops.join_next().await {
        done += n??;
    }
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(done == total, "{done} runs done, {total} expected");
    println!(
        "queue statements alone: {:.0} runs/s ({total} in {secs:.2} s)",
        total as f64 / secs
    );
    let result = serde_json::json!({
        "engine": common::engine(url),
        "runs": total,
        "floor_runs_per_s": total as f64 / secs,
    });
    println!("RESULT {result}");
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
