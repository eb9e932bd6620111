//! Batch event intake: events recorded with their runs through the path the API's
//! batch endpoint and the CSV import use (multi-row statements, automations matched
//! once per event type), with two matching automations — beside, in the same run on
//! the same database, a bare multi-row INSERT of rows of the same shape.
//!
//! cargo run --release --example bench-intake -- [database-url] [events]
//! e.g. sqlite:///tmp/herald-intake/herald.db 100000

#[path = "common.rs"]
#[allow(dead_code)] // this program records contact events of its own
mod common;

use std::time::Instant;

use herald::automations::model::Target;
use herald::automations::wizard::JobChoice;
use herald::clock::{Clock, SystemClock};
use herald::db::Db;
use herald::events::catalogue::{EventType, NewEvent};

const BATCH: usize = 1000;

async fn automation(db: &Db, name: &str, now: i64) -> anyhow::Result<()> {
    let job = JobChoice {
        kind: "send_new_password_to_contact".into(),
        target: Some(Target::EventParameter),
        config: serde_json::Value::Null,
        delay: None,
    };
    let event = EventType::ExternalEventReceived;
    common::active_automation(db, name, event, "Europe/Berlin", job, now).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = common::scratch("intake")?;
    let url = common::database_url(args.get(1), &dir.join("herald.db"));
    let total: usize = args.get(2).map_or(Ok(100_000), |s| s.parse())?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    automation(&db, "Intake bench A", now).await?;
    automation(&db, "Intake bench B", now).await?;
    herald::contacts::demo::seed(&db, now, 1000).await?;
    let contacts: Vec<i64> = sqlx::query_scalar("SELECT id FROM contacts ORDER BY id LIMIT 1000")
        .fetch_all(db.read())
        .await?;
    println!(
        "database: {:?}; {total} events in batches of {BATCH}, 2 matching automations",
        db.backend
    );

    // Herald: events and their runs, one transaction per batch.
    let runs_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs")
        .fetch_one(db.read())
        .await?;
    let started = Instant::now();
    for b in 0..total / BATCH {
        let events: Vec<NewEvent> = (0..BATCH)
            .map(|i| {
                let mut e = NewEvent::contact(
                    EventType::ExternalEventReceived,
                    contacts[(b * BATCH + i) % contacts.len()],
                );
                e.params =
                    serde_json::json!({ "name": "page_view", "data": { "n": b * BATCH + i } });
                e
            })
            .collect();
        let mut tx = db.begin().await?;
        herald::intake::events::record_many(&mut tx, SystemClock.now_ms(), &events).await?;
        db.commit(tx).await?;
    }
    let herald_secs = started.elapsed().as_secs_f64();
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs")
        .fetch_one(db.read())
        .await?;
    assert_eq!(runs - runs_before, 2 * total as i64, "two runs per event");
    let herald_rate = total as f64 / herald_secs;
    println!(
        "herald batch intake: {herald_rate:.0} events/s (with {} runs) in {herald_secs:.2} s",
        runs - runs_before
    );

    // Reference: bare multi-row INSERTs of the same event rows, nothing else.
    sqlx::query("DROP TABLE IF EXISTS bench_events")
        .execute(db.write())
        .await?;
    sqlx::query("CREATE TABLE bench_events (type TEXT, scope TEXT, contact_id BIGINT, params TEXT, occurred_at BIGINT)")
        .execute(db.write())
        .await?;
    let started = Instant::now();
    for b in 0..total / BATCH {
        let mut tx = db.begin().await?;
        for chunk in (0..BATCH).collect::<Vec<_>>().chunks(200) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        r * 5 + 1,
                        r * 5 + 2,
                        r * 5 + 3,
                        r * 5 + 4,
                        r * 5 + 5
                    )
                })
                .collect();
            // Bound as fast as Herald's own statements are (plain `?` on SQLite).
            let sql = db.backend.positional(format!(
                "INSERT INTO bench_events (type, scope, contact_id, params, occurred_at) VALUES {}",
                rows.join(", ")
            ));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for i in chunk {
                q = q
                    .bind("external_event_received")
                    .bind("C")
                    .bind(contacts[(b * BATCH + i) % contacts.len()])
                    .bind(
                        serde_json::json!({ "name": "page_view", "data": { "n": b * BATCH + i } })
                            .to_string(),
                    )
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let bare_secs = started.elapsed().as_secs_f64();
    let bare_rate = total as f64 / bare_secs;
    println!("reference bare multi-row INSERT: {bare_rate:.0} rows/s in {bare_secs:.2} s");
    println!(
        "herald ÷ reference: {:.0} %",
        100.0 * herald_rate / bare_rate
    );
    let result = serde_json::json!({
        "engine": common::engine(&url),
        "events": total,
        "events_per_s": herald_rate,
        "reference_rows_per_s": bare_rate,
    });
    println!("RESULT {result}");
    sqlx::query("DROP TABLE bench_events")
        .execute(db.write())
        .await?;
    Ok(())
}
