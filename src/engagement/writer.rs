//! The opens and clicks writer: a click's redirect hands its record here and
//! answers at once — it never waits for the write, and never fails because of it.
//! One task writes what has queued up meanwhile in one multi-row insert (group
//! commit), retrying while the database is away; at a graceful stop it is flushed
//! ([`Writer::flush`]) before the database closes, so a crash loses at most the
//! records of the write in flight.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::db::Db;

/// One open or click, as the request saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub at: i64,
    /// None when anonymous (likewise the contact).
    pub delivery_id: Option<i64>,
    pub message_id: Option<i64>,
    pub automation_id: Option<i64>,
    pub contact_id: Option<i64>,
    /// The link (its position and target); `None`: an open.
    pub link: Option<(usize, String)>,
    /// Why it is not a person's ("" when it may be).
    pub machine: &'static str,
    /// Counted per message and link only, never kept with the delivery or contact.
    pub anonymous: bool,
}

enum Queued {
    Hit(Hit),
    Flushed(oneshot::Sender<()>),
}

/// The handle requests hand their opens and clicks to.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Queued>,
}

/// The most records written in one statement.
const MOST: usize = 400;

impl Writer {
    /// Starts the writer on `db`; it ends when the last handle is dropped.
    pub fn start(db: Db) -> Self {
        let (queue, queued) = mpsc::unbounded_channel();
        tokio::spawn(write(db, queued));
        Self { queue }
    }

    /// Queues `hit` to be written; never waits.
    pub fn record(&self, hit: Hit) {
        if self.queue.send(Queued::Hit(hit)).is_err() {
            tracing::warn!("an open or click came after the writer stopped: not recorded");
        }
    }

    /// Waits until everything queued before it is written.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        if self.queue.send(Queued::Flushed(done)).is_ok() {
            let _ = written.await;
        }
    }
}

async fn write(db: Db, mut queued: mpsc::UnboundedReceiver<Queued>) {
    while let Some(first) = queued.recv().await {
        let mut hits = Vec::new();
        let mut flushed = Vec::new();
        let mut next = Some(first);
        while let Some(q) = next {
            match q {
                Queued::Hit(h) => hits.push(h),
                Queued::Flushed(done) => flushed.push(done),
            }
            next = if hits.len() < MOST {
                queued.try_recv().ok()
            } else {
                None
            };
        }
        let mut wait = Duration::from_millis(50);
        while let Err(e) = insert(&db, &hits).await {
            tracing::warn!(error = %e, records = hits.len(), "writing opens and clicks failed; trying again");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
        crate::metrics::tracked(hits.len());
        for done in flushed {
            let _ = done.send(());
        }
    }
}

/// Inserts the clicks of `hits` in one statement and their opens in another.
async fn insert(db: &Db, hits: &[Hit]) -> Result<(), sqlx::Error> {
    let (clicks, opens): (Vec<&Hit>, Vec<&Hit>) = hits.iter().partition(|h| h.link.is_some());
    let mut tx = db.begin().await?;
    if !clicks.is_empty() {
        let sql = format!(
            "INSERT INTO clicks (at, delivery_id, message_id, automation_id, contact_id, position, target, machine, anonymous) VALUES {}",
            placeholders(clicks.len(), 9)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for h in &clicks {
            let (position, target) = h.link.clone().unwrap_or_default();
            q = q
                .bind(h.at)
                .bind(h.delivery_id)
                .bind(h.message_id)
                .bind(h.automation_id)
                .bind(h.contact_id)
                .bind(position as i64)
                .bind(target)
                .bind(h.machine)
                .bind(i64::from(h.anonymous));
        }
        q.execute(&mut *tx).await?;
    }
    if !opens.is_empty() {
        let sql = format!(
            "INSERT INTO opens (at, delivery_id, message_id, automation_id, contact_id, machine, anonymous) VALUES {}",
            placeholders(opens.len(), 7)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for h in &opens {
            q = q
                .bind(h.at)
                .bind(h.delivery_id)
                .bind(h.message_id)
                .bind(h.automation_id)
                .bind(h.contact_id)
                .bind(h.machine)
                .bind(i64::from(h.anonymous));
        }
        q.execute(&mut *tx).await?;
    }
    db.commit(tx).await
}

/// `($1, …, $n), (…)`: `rows` rows of `columns` placeholders.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_every_cell() {
        assert_eq!(super::placeholders(2, 2), "($1, $2), ($3, $4)");
    }
}
