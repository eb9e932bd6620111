//! The worker: claims due runs into free slots, hands each to its job through the
//! registry, stores the outcome through the queue's transitions; sleeps until the
//! next due run or a wake-up (in-process, and LISTEN/NOTIFY on PostgreSQL); on stop,
//! claims nothing more and lets running jobs finish.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::Instrument;

use super::execute::{Done, Outage, Scheduler, complete_in_batches, execute};
use crate::db::Backend;
use crate::scheduler::queue::{self, LEASE};
use crate::types::RunId;

/// Runs claimed per round.
const BATCH: i64 = 128;
/// Runs executing at once in one process.
const MAX_RUNNING: usize = 256;
/// Free slots wanted before claiming again while runs are in flight.
const MIN_CLAIM: usize = 16;
/// How often full rounds also look for runs whose lease expired.
const SWEEP: Duration = Duration::from_secs(5);

/// On SQLite, takes (or renews) the one-scheduler lock for `owner`.
async fn hold_lock(s: &Scheduler, owner: &str) -> Result<bool, sqlx::Error> {
    let now = s.ctx.clock.now_ms();
    let done = sqlx::query(
        "INSERT INTO scheduler_lock (id, owner, expires_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
         WHERE scheduler_lock.owner = excluded.owner OR scheduler_lock.expires_at < $3",
    )
    .bind(owner)
    .bind(now + LEASE.as_millis() as i64)
    .bind(now)
    .execute(s.ctx.db.write())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// On PostgreSQL, wakes this process's scheduler when any instance enqueues runs.
async fn listen(s: Scheduler) {
    loop {
        match sqlx::postgres::PgListener::connect(&s.database_url).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen("herald_runs").await {
                    tracing::warn!(error = %e, "LISTEN herald_runs failed");
                } else {
                    while let Ok(_notification) = listener.recv().await {
                        s.ctx.db.wake_scheduler();
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "scheduler: cannot listen for other instances' runs")
            }
        }
        // The connection dropped: wake once (runs may have been missed) and reconnect.
        s.ctx.db.wake_scheduler();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The runs this process is executing. A run leaves `ids` as soon as its outcome
/// is stored (inside its task), not when the loop next reaps the task: a retry
/// claimed in between must not be taken for the attempt that just ended.
#[derive(Default)]
struct Running {
    tasks: tokio::task::JoinSet<RunId>,
    ids: Arc<Mutex<HashSet<RunId>>>,
    /// When to look for expired leases again while full rounds drain a backlog.
    next_sweep: i64,
    /// Whether the last claim found fewer due runs than it had room for: the queue
    /// ran out for now.
    ran_out: bool,
}

impl Running {
    /// Whether this claim also takes runs whose lease expired: always once the due
    /// runs ran out (the worker then sleeps until the next lease expires, so an
    /// expired one is taken when it wakes), and every [`SWEEP`] while full rounds
    /// drain a backlog — not at every round, where the extra statement was 5 % of
    /// the database's time (leases last [`LEASE`]: a few seconds more cost little).
    fn sweep_due(&self, now_ms: i64) -> bool {
        self.ran_out || now_ms >= self.next_sweep
    }

    /// Records a claim made at `now_ms` (which swept if [`Self::sweep_due`]).
    fn swept(&mut self, now_ms: i64, ran_out: bool) {
        if self.sweep_due(now_ms) {
            self.next_sweep = now_ms + SWEEP.as_millis() as i64;
        }
        self.ran_out = ran_out;
    }

    fn count(&self) -> usize {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Too few slots free to claim: with every slot taken, a claim for each run
    /// that finished cost more statements than the runs themselves (1.8 claims a
    /// run in the password pipeline); slots are filled some at a time instead.
    fn is_full(&self) -> bool {
        MAX_RUNNING.saturating_sub(self.count()) < MIN_CLAIM
    }

    fn finished(&mut self, id: Result<RunId, tokio::task::JoinError>) {
        if let Err(e) = id {
            tracing::error!(error = %e, "a run's task ended abnormally");
        }
    }

    /// Waits until one run finishes (never, when none runs).
    async fn one_finished(&mut self) {
        match self.tasks.join_next().await {
            Some(id) => self.finished(id),
            None => std::future::pending().await,
        }
        while let Some(id) = self.tasks.try_join_next() {
            self.finished(id);
        }
    }
}

/// A run's place in [`Running`], given back when its task ends (after the outcome
/// is stored), even by a panic.
struct Slot {
    ids: Arc<Mutex<HashSet<RunId>>>,
    id: RunId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Claims as many due runs as there are free slots (at most [`BATCH`] at once) and
/// starts each; returns how many it claimed. Runs finish on their own: a slow one
/// never holds up the claiming of others.
async fn claim_into(
    s: &Scheduler,
    owner: &str,
    running: &mut Running,
    done: &Done,
) -> Result<usize, sqlx::Error> {
    if running.is_full() {
        return Ok(0);
    }
    let free = MAX_RUNNING
        .saturating_sub(running.count())
        .min(BATCH as usize);
    let now = s.ctx.clock.now_ms();
    let runs = if running.sweep_due(now) {
        queue::claim(&s.ctx.db, now, owner, free as i64).await?
    } else {
        queue::claim_due(&s.ctx.db, now, owner, free as i64).await?
    };
    let n = runs.len();
    running.swept(now, n < free);
    for run in runs {
        // Still executing here (its lease looked expired after a jump of the
        // clock): the claim only renewed the lease.
        if !running
            .ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(run.id)
        {
            continue;
        }
        let ids = running.ids.clone();
        let done = done.clone();
        let (s, owner) = (s.clone(), owner.to_string());
        let span =
            tracing::info_span!("run", id = %run.id, job = %run.job_kind, attempt = run.attempts);
        running.tasks.spawn(
            async move {
                let id = run.id;
                let _slot = Slot { ids, id };
                execute(&s, &owner, run, &done).await;
                id
            }
            .instrument(span),
        );
    }
    Ok(n)
}

/// On SQLite nothing tells the scheduler of runs another process recorded (a Herald
/// serving pages beside it on the same file, a command): it looks at least this
/// often. On PostgreSQL every instance hears of them (LISTEN/NOTIFY).
const SQLITE_LOOK: Duration = Duration::from_secs(2);

/// How long to sleep: until the next pending run is due or a lease expires.
async fn next_wait(s: &Scheduler) -> Result<Duration, sqlx::Error> {
    let wait = match crate::scheduler::runs::next_wake_at(&s.ctx.db).await? {
        Some(t) => Duration::from_millis((t - s.ctx.clock.now_ms()).clamp(0, 3_600_000) as u64),
        None => Duration::from_secs(3600),
    };
    Ok(match s.ctx.db.backend {
        Backend::Sqlite => wait.min(SQLITE_LOOK),
        Backend::Postgres => wait,
    })
}

/// The running worker.
pub struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    owner: String,
}

/// A name for this process's claims.
fn owner_name() -> String {
    format!(
        "{}-{}-{}",
        hostname(),
        std::process::id(),
        crate::types::random_hex(4)
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "herald".into())
}

impl Worker {
    /// Starts the worker loop.
    pub fn start(s: Scheduler) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let owner = owner_name();
        let me = owner.clone();
        let listener =
            (s.ctx.db.backend == Backend::Postgres).then(|| tokio::spawn(listen(s.clone())));
        let task = tokio::spawn(async move {
            if s.ctx.db.backend == Backend::Sqlite {
                // One scheduler per SQLite database: wait while another process holds it.
                let mut said = false;
                loop {
                    match hold_lock(&s, &me).await {
                        Ok(true) => break,
                        Ok(false) if !said => {
                            said = true;
                            tracing::warn!(
                                "another Herald process runs the scheduler for this SQLite database; this one serves \
                                 pages only and takes over if that process stops (use PostgreSQL to run several)"
                            );
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "scheduler lock"),
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(LEASE / 3) => {}
                        _ = stopped.changed() => return,
                    }
                }
            }
            tracing::info!(owner = %me, "scheduler started");
            let pruning = tokio::spawn((s.housekeeping)());
            // The lock's heartbeat runs beside the loop, which sleeps until work is due.
            let (lost_tx, mut lost) = tokio::sync::watch::channel(false);
            let heartbeat = (s.ctx.db.backend == Backend::Sqlite).then(|| {
                let (s, me, lost_tx) = (s.clone(), me.clone(), lost_tx.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(LEASE / 3).await;
                        if let Ok(false) = hold_lock(&s, &me).await {
                            tracing::error!(
                                "the scheduler lock was taken over; stopping this scheduler"
                            );
                            let _ = lost_tx.send(true);
                            return;
                        }
                    }
                })
            });
            let mut running = Running::default();
            let (done, done_rx) = tokio::sync::mpsc::unbounded_channel();
            let completer = tokio::spawn(complete_in_batches(s.clone(), me.clone(), done_rx));
            let mut outage = Outage::default();
            loop {
                if *stopped.borrow() {
                    break;
                }
                // While the database fails, the loop pauses between tries (a wake-up
                // computed from an expired lease is in the past: it spun).
                let waited = match claim_into(&s, &me, &mut running, &done).await {
                    // A full round: more may be due at once.
                    Ok(n) if n == BATCH as usize => {
                        outage.ended();
                        continue;
                    }
                    Ok(_) if running.is_full() => Ok(Duration::from_secs(3600)),
                    Ok(_) => next_wait(&s).await.map_err(|e| ("looking for due runs", e)),
                    Err(e) => Err(("claiming runs", e)),
                };
                let wait = match waited {
                    Ok(wait) => {
                        outage.ended();
                        wait
                    }
                    Err((what, e)) => outage.failed(what, &e),
                };
                // With every slot taken, only a finished run lets more start. Once
                // the due runs ran out, a finished run frees a slot nothing needs:
                // the worker waits for the next due time, a lease's end or news of
                // runs (enqueued, retried) instead of claiming again at every
                // finished run — at the end of a backlog that was three statements
                // a run, finding nothing.
                let slot_matters = running.is_full() || !running.ran_out;
                tokio::select! {
                    _ = s.ctx.db.scheduler_woken() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = running.one_finished(), if slot_matters => {}
                    _ = stopped.changed() => break,
                    _ = lost.changed() => break,
                }
            }
            // Stop claiming; the runs already started finish (within the grace period),
            // and the done ones are written.
            while running.tasks.join_next().await.is_some() {}
            drop(done);
            let _ = completer.await;
            if let Some(l) = listener {
                l.abort();
            }
            if let Some(h) = heartbeat {
                h.abort();
            }
            pruning.abort();
            drop(lost_tx);
            tracing::info!("scheduler stopped");
        });
        Self { stop, task, owner }
    }

    /// Stops claiming, lets running jobs finish for up to `grace`, then releases the
    /// leases of whatever is left.
    pub async fn stop(self, db: &crate::db::Db, grace: Duration) {
        let _ = self.stop.send(true);
        let task = self.task;
        let abort = task.abort_handle();
        if tokio::time::timeout(grace, task).await.is_err() {
            tracing::warn!(
                "scheduler: jobs still running after the grace period; releasing their leases"
            );
            // Dropping the worker's task set stops the jobs still running.
            abort.abort();
        }
        if let Err(e) = queue::release(db, &self.owner).await {
            tracing::warn!(error = %e, "releasing leases failed; they expire by themselves");
        }
        let _ = sqlx::query("DELETE FROM scheduler_lock WHERE owner = $1")
            .bind(&self.owner)
            .execute(db.write())
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_leases_are_looked_for_when_due_runs_run_out_and_every_sweep_while_draining() {
        let sweep = SWEEP.as_millis() as i64;
        let mut r = Running::default();
        assert!(r.sweep_due(1_000), "the first claim looks");
        r.swept(1_000, false);
        assert!(!r.sweep_due(1_001), "full rounds do not look again at once");
        r.swept(1_001, false);
        assert!(!r.sweep_due(1_000 + sweep - 1));
        assert!(r.sweep_due(1_000 + sweep), "but once every sweep interval");
        r.swept(1_000 + sweep, false);
        assert!(!r.sweep_due(1_001 + sweep));
        r.swept(1_001 + sweep, true);
        assert!(
            r.sweep_due(1_002 + sweep),
            "a round that ran out looks next time"
        );
    }
}
