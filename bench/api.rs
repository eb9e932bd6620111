//! The event API under load: `POST /api/v1/events` for one of 10,000 contacts,
//! matching one automation with a 1-day delay (each call records the event and
//! schedules one run), driven by wrk with 64 connections — beside, in the same
//! run, the bare actix-web endpoint with one INSERT of the same body into the same
//! engine (`bench-bare-api`). Rounds alternate between the two.
//!
//! cargo build --release --bin herald --example bench-bare-api &&
//! cargo run --release --example bench-api -- [database-url] [rounds] [seconds]
//!
//! Needs `wrk` and a fresh database. The benchmark's
//! key is exempt from the per-key rate limit by the setting (calls per minute set
//! out of reach). Prints one line `RESULT {json}` for `bench/run`.

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

use herald::automations::model::Target;
use herald::automations::time_frame::{Delay, DelayUnit};
use herald::automations::wizard::JobChoice;
use herald::clock::{Clock, SystemClock};
use herald::db::Db;
use herald::events::catalogue::EventType;

const CONTACTS: u64 = 10_000;

/// The wrk script: one event for a random contact per request.
fn script(path: &std::path::Path, key: Option<&str>) -> anyhow::Result<()> {
    let auth = key.map_or(String::new(), |k| {
        format!("wrk.headers[\"Authorization\"] = \"Bearer {k}\"\n")
    });
    std::fs::write(
        path,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{auth}\
             request = function()\n  return wrk.format(nil, nil, nil, string.format('{{\"type\":\"external_event_received\",\"contact\":{{\"id\":%d}},\"name\":\"order_paid\",\"data\":{{\"amount\":42}}}}', math.random(1, {CONTACTS})))\nend\n"
        ),
    )?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = common::scratch("api")?;
    let url = common::database_url(args.get(1), &dir.join("herald.db"));
    let rounds: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let seconds: u32 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    let have: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
        .fetch_one(db.read())
        .await?;
    if (have as u64) < CONTACTS {
        herald::contacts::demo::seed(&db, now, CONTACTS - have as u64).await?;
    }
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM automations")
        .fetch_one(db.read())
        .await?;
    anyhow::ensure!(
        existing == 0,
        "use a fresh database (this one has automations)"
    );
    let job = JobChoice {
        kind: "send_new_password_to_contact".into(),
        target: Some(Target::EventParameter),
        config: serde_json::Value::Null,
        delay: Delay::new(DelayUnit::Days, 1),
    };
    let event = EventType::ExternalEventReceived;
    common::active_automation(&db, "Order paid", event, "UTC", job, now).await?;
    let mut tx = db.begin().await?;
    let (_, key) = herald::api::keys::create(&mut tx, "benchmark", 1, now).await?;
    db.commit(tx).await?;
    sqlx::query("DELETE FROM settings WHERE key = 'api_calls_per_minute'")
        .execute(db.write())
        .await?;
    sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ('api_calls_per_minute', '1000000000', $1)")
        .bind(now)
        .execute(db.write())
        .await?;
    db.close().await;

    let herald_script = dir.join("herald.lua");
    script(&herald_script, Some(key.expose()))?;
    let bare_script = dir.join("bare.lua");
    script(&bare_script, None)?;
    let bare_url = match common::engine(&url) {
        "PostgreSQL" => url.clone(),
        _ => common::database_url(None, &dir.join("bare.db")),
    };
    let mut herald_rounds = Vec::new();
    let mut bare_rounds = Vec::new();
    for _ in 0..rounds {
        let herald = common::Herald::start(&url, &dir, &[]).await?;
        let (rps, p99, errors, _) = common::wrk(
            &format!("{}/api/v1/events", herald.base),
            Some(&herald_script),
            seconds,
        )?;
        anyhow::ensure!(
            errors == 0,
            "Herald answered {errors} requests with an error"
        );
        herald_rounds.push(serde_json::json!({ "rps": rps, "p99_ms": p99 }));
        herald.stop()?;

        let (mut bare, bare_base) = common::start_bare(&bare_url).await?;
        let measured = common::wrk(&format!("{bare_base}/events"), Some(&bare_script), seconds);
        let _ = bare.kill();
        let _ = bare.wait();
        let (rps, p99, errors, _) = measured?;
        anyhow::ensure!(
            errors == 0,
            "the bare endpoint answered {errors} requests with an error"
        );
        bare_rounds.push(serde_json::json!({ "rps": rps, "p99_ms": p99 }));
    }
    let db = Db::connect(&url).await?;
    let scheduled: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE status = 'pending'")
            .fetch_one(db.read())
            .await?;
    let events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE type = 'external_event_received'")
            .fetch_one(db.read())
            .await?;
    db.close().await;
    anyhow::ensure!(
        scheduled == events,
        "{events} events but {scheduled} runs scheduled"
    );
    let result = serde_json::json!({
        "engine": common::engine(&url),
        "seconds": seconds,
        "herald": herald_rounds,
        "reference": bare_rounds,
        "events_recorded": events,
        "runs_scheduled": scheduled,
    });
    println!("RESULT {result}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
