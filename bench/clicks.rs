//! Clicks under load, and the statistics of a large message.
//!
//! 1. `GET /l/<token>` for 1,000 tracked emails (a random one per request), driven
//!    by wrk with 64 connections — beside, in the same run, a bare actix-web
//!    endpoint answering the same 302 (`bench-bare-api`). After Herald stops on
//!    SIGTERM, every click answered must be in the database (wrk counts the
//!    requests it completed; those in flight when it stops are answered and
//!    recorded too, so the database holds a few more).
//! 2. The statistics of a message with `deliveries` emails and `clicks` clicks
//!    (`GET /api/v1/messages/{id}/stats`, which computes what its page shows):
//!    wrk with 4 connections, p99.
//!
//! cargo build --release --bin herald --example bench-bare-api &&
//! cargo run --release --example bench-clicks -- [database-url] [rounds] [seconds] [deliveries] [clicks]
//!
//! Needs `wrk` and a fresh database. Prints one line `RESULT {json}` for `bench/run`.

#[path = "common.rs"]
#[allow(dead_code)]
mod common;

use std::process::Command;

use herald::clock::{Clock, SystemClock};
use herald::db::Db;

/// The tracked emails clicked in part 1.
const EMAILS: usize = 1_000;
const SECRET: &str = "a secret key for the clicks benchmark only, long enough";

/// The wrk script: a random one of `paths` per request.
fn script(path: &std::path::Path, paths: &[String]) -> anyhow::Result<()> {
    let list: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
    std::fs::write(
        path,
        format!(
            "local paths = {{{}}}\nrequest = function()\n  return wrk.format(\"GET\", paths[math.random(1, #paths)])\nend\n",
            list.join(",")
        ),
    )?;
    Ok(())
}

/// Seeds a message sent `deliveries` times over 30 days, a fiftieth bounced,
/// with `clicks` decided clicks on 3 links and their roll-ups; returns its id
/// and the ids' first email used for part 1.
async fn seed(db: &Db, now: i64, deliveries: i64, clicks: i64) -> anyhow::Result<i64> {
    let message: i64 = sqlx::query_scalar(
        "INSERT INTO messages (name, subject, sender_name, text_body, html_body, created_at, updated_at) \
         VALUES ('Spring sale', 'Spring sale', 'Shop', 'Hello', '', $1, $1) RETURNING id",
    )
    .bind(now)
    .fetch_one(db.write())
    .await?;
    let links =
        r#"["https://shop.example/a","https://shop.example/b","https://shop.example/spring-sale"]"#;
    let (series, hex) = match db.backend {
        herald::db::Backend::Postgres => (
            "generate_series(1, $1) AS s(i)",
            "lpad(to_hex(i + $5), 20, '0')",
        ),
        herald::db::Backend::Sqlite => (
            "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) SELECT i FROM n) AS s",
            "printf('%020x', i + $5)",
        ),
    };
    // In statements of 10,000 emails, as Herald writes them (a few hundred a
    // transaction): the roll-up triggers update the same message-hours, and
    // PostgreSQL walks every earlier version of a row updated in the same
    // transaction — a million in one statement takes hours there.
    let mut done = 0;
    while done < deliveries {
        let rows = (deliveries - done).min(10_000);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO deliveries (reference, kind, message_id, automation_id, address, smtp_message_id, sent_at, fate, links) \
             SELECT {hex}, 'message', $2, 1, 'reader' || (i + $5) || '@example.org', '<' || (i + $5) || '@shop.example>', \
             $3 - ((i + $5) % 30) * 86400000 - 3600000, CASE WHEN (i + $5) % 50 = 0 THEN 'hard_bounce' ELSE 'sent' END, $4 FROM {series}"
        )))
        .bind(rows)
        .bind(message)
        .bind(now)
        .bind(links)
        .bind(done)
        .execute(db.write())
        .await?;
        done += rows;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO clicks (at, delivery_id, message_id, automation_id, contact_id, position, target, machine, decided) \
         SELECT $3 - (i % 30) * 86400000 - 1800000, i, $2, 1, NULL, i % 3, \
         CASE i % 3 WHEN 0 THEN 'https://shop.example/a' WHEN 1 THEN 'https://shop.example/b' ELSE 'https://shop.example/spring-sale' END, \
         CASE WHEN i % 10 = 0 THEN 'a link scanner' ELSE '' END, 1 FROM {series}"
    )))
    .bind(clicks)
    .bind(message)
    .bind(now)
    .execute(db.write())
    .await?;
    // The roll-ups, as deciding those clicks would have left them (the emails'
    // own are the triggers').
    sqlx::query(
        "INSERT INTO engagement_hourly (message_id, automation_id, hour, clicks, unique_clicks, machine_clicks) \
         SELECT message_id, 1, at - at % 3600000, \
         SUM(CASE WHEN machine = '' THEN 1 ELSE 0 END), SUM(CASE WHEN machine = '' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN machine = '' THEN 0 ELSE 1 END) FROM clicks GROUP BY message_id, at - at % 3600000 \
         ON CONFLICT (message_id, automation_id, hour) DO UPDATE SET clicks = excluded.clicks, \
         unique_clicks = excluded.unique_clicks, machine_clicks = excluded.machine_clicks",
    )
    .execute(db.write())
    .await?;
    sqlx::query(
        "INSERT INTO link_clicks (message_id, automation_id, target, clicks, unique_clicks, machine_clicks) \
         SELECT message_id, 1, target, SUM(CASE WHEN machine = '' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN machine = '' THEN 1 ELSE 0 END), SUM(CASE WHEN machine = '' THEN 0 ELSE 1 END) \
         FROM clicks GROUP BY message_id, target",
    )
    .execute(db.write())
    .await?;
    Ok(message)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = common::scratch("clicks")?;
    let url = common::database_url(args.get(1), &dir.join("herald.db"));
    let rounds: usize = args.get(2).map_or(Ok(3), |s| s.parse())?;
    let seconds: u32 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let deliveries: i64 = args.get(4).map_or(Ok(1_000_000), |s| s.parse())?;
    let clicks: i64 = args.get(5).map_or(Ok(300_000), |s| s.parse())?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
        .fetch_one(db.read())
        .await?;
    anyhow::ensure!(existing == 0, "use a fresh database (this one has emails)");
    let seeding = std::time::Instant::now();
    let message = seed(&db, now, deliveries, clicks).await?;
    let seeded_s = seeding.elapsed().as_secs_f64();
    let mut tx = db.begin().await?;
    let (_, key) = herald::api::keys::create(&mut tx, "benchmark", 1, now).await?;
    db.commit(tx).await?;
    sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ('api_calls_per_minute', '1000000000', $1)")
        .bind(now)
        .execute(db.write())
        .await?;
    let raw_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clicks")
        .fetch_one(db.read())
        .await?;
    db.close().await;

    // The tokens of the first emails' links, made with the key Herald uses.
    let key_bytes = actix_web::cookie::Key::derive_from(SECRET.as_bytes());
    let tokens = herald::tracking::Tokens::new(key_bytes.master());
    let paths: Vec<String> = (1..=EMAILS)
        .map(|i| format!("/l/{}", tokens.click(&format!("{i:020x}"), i % 3)))
        .collect();
    let click_script = dir.join("clicks.lua");
    script(&click_script, &paths)?;

    let mut herald_rounds = Vec::new();
    let mut bare_rounds = Vec::new();
    let mut answered = 0u64;
    for _ in 0..rounds {
        let herald = common::Herald::start(&url, &dir, &[("HERALD_SECRET_KEY", SECRET)]).await?;
        let (rps, p99, errors, requests) = common::wrk(&herald.base, Some(&click_script), seconds)?;
        anyhow::ensure!(errors == 0, "Herald answered {errors} clicks with an error");
        answered += requests;
        herald_rounds.push(serde_json::json!({ "rps": rps, "p99_ms": p99 }));
        herald.stop()?;

        let bare_db = common::database_url(None, &dir.join("bare.db"));
        let (mut bare, bare_base) = common::start_bare(&bare_db).await?;
        let measured = common::wrk(&bare_base, Some(&click_script), seconds);
        let _ = bare.kill();
        let _ = bare.wait();
        let (rps, p99, errors, _) = measured?;
        anyhow::ensure!(
            errors == 0,
            "the bare endpoint answered {errors} with an error"
        );
        bare_rounds.push(serde_json::json!({ "rps": rps, "p99_ms": p99 }));
    }
    let db = Db::connect(&url).await?;
    let recorded: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clicks")
        .fetch_one(db.read())
        .await?;
    let recorded = recorded - raw_before;
    db.close().await;

    // 2. How fast Herald decides the clicks the rounds left (for up to two
    // minutes: the rounds leave more than a real day's clicks), then the statistics
    // of the large message with nothing else to do: the rest of the backlog is
    // marked decided without its roll-ups (they are the rounds' clicks, not the
    // seeded message's, whose figures the statistics read).
    let herald = common::Herald::start(&url, &dir, &[("HERALD_SECRET_KEY", SECRET)]).await?;
    let db = Db::connect(&url).await?;
    let deciding = std::time::Instant::now();
    let undecided = |db: &Db| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM clicks WHERE decided = 0")
                .fetch_one(db.read())
                .await
        }
    };
    let backlog = undecided(&db).await?;
    let mut left = backlog;
    while left > 0 && deciding.elapsed().as_secs() < 120 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        left = undecided(&db).await?;
    }
    let decided_per_s = (backlog - left) as f64 / deciding.elapsed().as_secs_f64();
    herald.stop()?;
    sqlx::query("UPDATE clicks SET decided = 1 WHERE decided = 0")
        .execute(db.write())
        .await?;
    db.close().await;
    let herald = common::Herald::start(&url, &dir, &[("HERALD_SECRET_KEY", SECRET)]).await?;
    let stats_script = dir.join("stats.lua");
    std::fs::write(
        &stats_script,
        format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {}\"\n",
            key.expose()
        ),
    )?;
    let stats_url = format!("{}/api/v1/messages/{message}/stats?days=30", herald.base);
    let probe: serde_json::Value = reqwest::Client::new()
        .get(&stats_url)
        .bearer_auth(key.expose())
        .send()
        .await?
        .json()
        .await?;
    let out = Command::new("wrk")
        .args(["-t1", "-c4", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&stats_script)
        .arg(&stats_url)
        .output()?;
    herald.stop()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let stats_p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    let stats_rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let result = serde_json::json!({
        "engine": common::engine(&url),
        "seconds": seconds,
        "herald": herald_rounds,
        "reference": bare_rounds,
        "clicks_answered": answered,
        "clicks_recorded": recorded,
        "decided_per_s": decided_per_s,
        "backlog": backlog,
        "left_undecided": left,
        "stats": {
            "deliveries": deliveries,
            "clicks": clicks,
            "seeded_s": seeded_s,
            "sent_30_days": probe["figures"]["sent"],
            "p99": stats_p99,
            "rps": stats_rps,
        },
    });
    println!("RESULT {result}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
