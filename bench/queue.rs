//! Queue overhead: 20,000 runs of a no-op job drained by Herald's own scheduler
//! at its default settings (a benchmark-only job kind registered here through the
//! job trait — never in the product's catalogue), on SQLite or PostgreSQL.
//!
//! cargo run --release --example bench-queue -- [database-url] [runs]
//! e.g. postgres://postgres@127.0.0.1:5432/herald_bench 20000

use std::time::{Duration, Instant};

use herald::automations::model::{EventFilter, State};
use herald::automations::store;
use herald::automations::time_frame::{ALL_DAYS, HolidayRule};
use herald::automations::wizard::{EventPart, JobChoice, TimeFramePart};
use herald::clock::{Clock, SystemClock};
use herald::config::{Config, Secret};
use herald::db::Db;
use herald::events::catalogue::{EventType, NewEvent, Scope};
use herald::jobs::registry::{Execution, Job};
use herald::scheduler::queue::{Claimed, Outcome, Target};
use herald::state::JobContext;

/// Does nothing, successfully: what is left is the queue's own cost.
struct NoOp;

impl Job for NoOp {
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
                kind: "automation",
                id: run.automation_id.0,
            })
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::env::temp_dir().join(format!("herald-bench-queue-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("herald.db").display()));
    let total: usize = args.get(2).map_or(Ok(20_000), |s| s.parse())?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    // One automation of the no-op job on an (S) event; the runs come through intake.
    let part = EventPart {
        name: "Queue bench".into(),
        description: String::new(),
        event: EventType::ExternalHttpRequestReceived,
        filter: EventFilter::Any,
        selection: vec![],
    };
    let frame = TimeFramePart {
        start_at: now - 3_600_000,
        time_zone: "UTC".into(),
        end_at: None,
        days: ALL_DAYS,
        holidays: HolidayRule::Always,
        notify: vec![],
        notify_days_before: 30,
    };
    let job = JobChoice {
        kind: "bench_noop".into(),
        target: None,
        config: serde_json::Value::Null,
        delay: None,
    };
    let mut tx = db.begin().await?;
    let id = store::create(&mut tx, 1, &part, "UTC", now).await?;
    store::save_job(&mut tx, id, &job, now).await?;
    store::save_time_frame(&mut tx, id, &frame, now).await?;
    store::set_state(&mut tx, id, State::Active, now).await?;
    tx.commit().await?;
    for chunk in (0..total).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<NewEvent> = chunk
            .iter()
            .map(|i| NewEvent {
                kind: EventType::ExternalHttpRequestReceived,
                contact_id: None,
                system_user_id: None,
                group_id: None,
                params: serde_json::json!({ "name": "bench", "data": { "n": i } }),
            })
            .collect();
        let mut tx = db.begin().await?;
        herald::events::store::record_many(&mut tx, SystemClock.now_ms(), &events).await?;
        db.commit(tx).await?;
    }
    db.close().await;
    println!("database: {url}; {total} no-op runs pending");

    // Herald as it runs in production: the application with its scheduler.
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse()?;
    config.database_url = Secret::new(url.clone());
    config.data_dir = dir.clone();
    let registry = herald::jobs::catalogue::standard().with(NoOp);
    let app =
        herald::app::Application::build_with(config, std::sync::Arc::new(SystemClock), registry)
            .await?;
    let state = app.state();
    let handle = app.handle();
    let started = Instant::now();
    let server = tokio::spawn(app.run_until_stopped());
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM job_runs WHERE job_kind = 'bench_noop' AND status = 'done'",
        )
        .fetch_one(state.db.read())
        .await?;
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
    println!(
        "herald no-op runs: {:.0} runs/s ({total} in {secs:.2} s, start-up included)",
        total as f64 / secs
    );
    handle.stop(true).await;
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
