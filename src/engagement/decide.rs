//! Deciding opens and clicks once they have settled (2 s after they came, when a
//! burst of every link of an email can be seen whole): each is claimed, told a
//! machine's or a person's, counted in the roll-ups the statistics read, and — a
//! person's, kept with a contact — recorded as *Message Opened (C)* or *Link
//! Clicked (C)*, all in one transaction, so the numbers and the events agree.
//! Runs on the instance that holds the scheduler.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::db::{Db, Tx};
use crate::events::catalogue::NewEvent;

/// How long an open or click waits before it is decided.
pub const SETTLE_MS: i64 = 2_000;
/// The most of each decided in one transaction.
const BATCH: i64 = 500;
/// Why a click is a machine's when every link of its email came within 2 s.
pub const BURST: &str = "a burst of every link";

/// Deletes the opens and clicks that came before `before` and were decided (the
/// roll-ups keep counting them).
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    Ok(crate::db::delete_in_batches(
        db,
        "DELETE FROM clicks WHERE id IN \
         (SELECT id FROM clicks WHERE at < $1 AND decided = 1 LIMIT $2)",
        before,
    )
    .await?
        + crate::db::delete_in_batches(
            db,
            "DELETE FROM opens WHERE id IN \
             (SELECT id FROM opens WHERE at < $1 AND decided = 1 LIMIT $2)",
            before,
        )
        .await?)
}

/// Decides every settled open and click, now and then, for as long as it runs.
pub async fn run(db: Db, clock: Arc<dyn Clock>) {
    loop {
        match pass(&db, clock.now_ms()).await {
            Ok(n) if n as i64 >= BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deciding opens and clicks failed"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[derive(Debug, sqlx::FromRow)]
struct Row {
    id: i64,
    at: i64,
    delivery_id: Option<i64>,
    message_id: Option<i64>,
    automation_id: Option<i64>,
    contact_id: Option<i64>,
    position: i64,
    target: String,
    machine: String,
}

/// Decides the opens and clicks that settled by `now_ms` (a batch of each);
/// returns how many.
pub async fn pass(db: &Db, now_ms: i64) -> Result<usize, sqlx::Error> {
    let settled = now_ms - SETTLE_MS;
    // A read first: an idle Herald takes no write lock twice a second.
    let waiting: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM clicks WHERE decided = 0 AND at <= $1 LIMIT 1) c) \
         + (SELECT COUNT(*) FROM (SELECT 1 FROM opens WHERE decided = 0 AND at <= $1 LIMIT 1) o)",
    )
    .bind(settled)
    .fetch_one(db.read())
    .await?;
    if waiting == 0 {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let clicks: Vec<Row> = claim(&mut tx, "clicks", "position, target", settled).await?;
    let opens: Vec<Row> = claim(
        &mut tx,
        "opens",
        "CAST(0 AS BIGINT) AS position, '' AS target",
        settled,
    )
    .await?;
    for row in &clicks {
        decide(&mut tx, row, true).await?;
    }
    for row in &opens {
        decide(&mut tx, row, false).await?;
    }
    let n = clicks.len() + opens.len();
    if n > 0 {
        db.commit(tx).await?;
    }
    Ok(n)
}

/// Marks a batch of `table`'s settled rows decided (no other pass takes them) and
/// returns them, oldest first.
async fn claim(
    tx: &mut Tx,
    table: &str,
    link: &str,
    settled: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    let sql = format!(
        "UPDATE {table} SET decided = 1 WHERE decided = 0 AND id IN \
         (SELECT id FROM {table} WHERE decided = 0 AND at <= $1 ORDER BY id LIMIT $2) \
         RETURNING id, at, delivery_id, message_id, automation_id, contact_id, {link}, machine"
    );
    let mut rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(settled)
        .bind(BATCH)
        .fetch_all(&mut **tx)
        .await?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

async fn decide(tx: &mut Tx, row: &Row, click: bool) -> Result<(), sqlx::Error> {
    let mut machine = row.machine.clone();
    let table = if click { "clicks" } else { "opens" };
    if click
        && machine.is_empty()
        && let Some(delivery) = row.delivery_id
        && burst(tx, delivery, row.at).await?
    {
        machine = BURST.to_string();
        sqlx::query("UPDATE clicks SET machine = $1 WHERE id = $2")
            .bind(&machine)
            .bind(row.id)
            .execute(&mut **tx)
            .await?;
    }
    let person = machine.is_empty();
    // The first of its kind: no earlier person's open of the email, or click of
    // the link; and for a click, of any link of the email (a unique click).
    let first = person && !earlier(tx, table, row, click).await?;
    let first_of_email = if click {
        person && !earlier(tx, table, row, false).await?
    } else {
        first
    };
    count(tx, row, click, person, (first_of_email, first)).await?;
    if let (true, Some(contact), Some(delivery), Some(message)) =
        (person, row.contact_id, row.delivery_id, row.message_id)
    {
        let name: String = sqlx::query_scalar("SELECT name FROM messages WHERE id = $1")
            .bind(message)
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or_default();
        let link = click.then_some((row.position, row.target.as_str()));
        let event = NewEvent::engaged(contact, delivery, (message, &name), link, first);
        crate::intake::events::record(tx, row.at, &event).await?;
    }
    Ok(())
}

/// Whether a person opened the email of `row` before it (or, `same_link`,
/// clicked its link); never for an open or click kept without its email.
async fn earlier(
    tx: &mut Tx,
    table: &str,
    row: &Row,
    same_link: bool,
) -> Result<bool, sqlx::Error> {
    let Some(delivery) = row.delivery_id else {
        return Ok(false);
    };
    // Every earlier row is decided by now (rows are claimed oldest first), so
    // `decided` is not asked: on SQLite it made the planner walk every decided
    // row instead of the email's few (found by bench-clicks).
    let sql = format!(
        "SELECT COUNT(*) FROM {table} WHERE delivery_id = $1 AND machine = '' AND id < $2{}",
        if same_link { " AND position = $3" } else { "" }
    );
    let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(delivery)
        .bind(row.id);
    if same_link {
        q = q.bind(row.position);
    }
    let n: i64 = q.fetch_one(&mut **tx).await?;
    Ok(n > 0)
}

/// Whether every link of the email `delivery` was asked for within 2 s of `at`.
async fn burst(tx: &mut Tx, delivery: i64, at: i64) -> Result<bool, sqlx::Error> {
    let links: Option<String> = sqlx::query_scalar("SELECT links FROM deliveries WHERE id = $1")
        .bind(delivery)
        .fetch_optional(&mut **tx)
        .await?
        .flatten();
    let n = links.map_or(0, |l| crate::deliveries::Targets::from(l).0.len() as i64);
    if n < 2 {
        return Ok(false);
    }
    let asked: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT position) FROM clicks WHERE delivery_id = $1 AND at >= $2 AND at <= $3",
    )
    .bind(delivery)
    .bind(at - SETTLE_MS)
    .bind(at + SETTLE_MS)
    .fetch_one(&mut **tx)
    .await?;
    Ok(asked >= n)
}

/// The columns of the hourly roll-up [`add_up`] adds to, in its order.
const ROLLED_UP: [&str; 7] = [
    "opens",
    "unique_opens",
    "machine_opens",
    "clicks",
    "unique_clicks",
    "machine_clicks",
    "unsubscribes",
];

/// Adds `counts` (in [`ROLLED_UP`] order) to the hour of `at` of the message and
/// automation `of` (0 for none).
pub async fn add_up(
    tx: &mut Tx,
    (message, automation): (i64, i64),
    at: i64,
    counts: [i64; 7],
) -> Result<(), sqlx::Error> {
    let columns = ROLLED_UP.join(", ");
    let values: Vec<String> = (4..4 + ROLLED_UP.len()).map(|i| format!("${i}")).collect();
    let sums: Vec<String> = ROLLED_UP
        .iter()
        .map(|c| format!("{c} = engagement_hourly.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO engagement_hourly (message_id, automation_id, hour, {columns}) \
         VALUES ($1, $2, $3, {}) ON CONFLICT (message_id, automation_id, hour) DO UPDATE SET {}",
        values.join(", "),
        sums.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(message)
        .bind(automation)
        .bind(at - at.rem_euclid(3_600_000));
    for n in counts {
        q = q.bind(n);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

/// Adds the open or click to the hourly roll-up of its message and automation
/// (unique: the email's first), and a click to its link's totals (unique: the
/// link's first in the email).
async fn count(
    tx: &mut Tx,
    row: &Row,
    click: bool,
    person: bool,
    (first, first_of_link): (bool, bool),
) -> Result<(), sqlx::Error> {
    let (person, first, machine) = (i64::from(person), i64::from(first), i64::from(!person));
    let first_of_link = i64::from(first_of_link);
    // In ROLLED_UP's order: opens, then clicks, then unsubscribes.
    let counts = if click {
        [0, 0, 0, person, first, machine, 0]
    } else {
        [person, first, machine, 0, 0, 0, 0]
    };
    let (message, automation) = (row.message_id.unwrap_or(0), row.automation_id.unwrap_or(0));
    add_up(tx, (message, automation), row.at, counts).await?;
    if click {
        sqlx::query(
            "INSERT INTO link_clicks (message_id, automation_id, target, clicks, unique_clicks, machine_clicks) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id, automation_id, target) DO UPDATE SET \
             clicks = link_clicks.clicks + excluded.clicks, \
             unique_clicks = link_clicks.unique_clicks + excluded.unique_clicks, \
             machine_clicks = link_clicks.machine_clicks + excluded.machine_clicks",
        )
        .bind(message)
        .bind(automation)
        .bind(&row.target)
        .bind(person)
        .bind(first_of_link)
        .bind(machine)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
