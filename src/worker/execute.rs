//! One run executed and what it did stored: the attempt under its deadline with its
//! lease renewed, and the outcome written through the queue's transitions — done
//! runs many per statement, every write tried again while the database is away.

use std::sync::Arc;
use std::time::Duration;

use crate::jobs::registry::Registry;
use crate::scheduler::queue::{self, Claimed, Completed, LEASE, Outcome};
use crate::state::JobContext;

/// What the worker needs: the jobs' context, the registry, and its settings.
#[derive(Clone)]
pub struct Scheduler {
    pub ctx: JobContext,
    pub jobs: Arc<Registry>,
    /// The database URL, for LISTEN on PostgreSQL.
    pub database_url: String,
    /// The longest one attempt may take (a job may ask for longer).
    pub job_timeout: Duration,
    /// Work done beside the loop while this process holds the scheduler, handed
    /// in from above (the application's retention task).
    pub housekeeping: Housekeeping,
}

/// Starts a task that runs until it is dropped (aborted when the scheduler stops).
pub type Housekeeping = Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

/// Where done runs go: written in batches by [`complete_in_batches`].
pub(super) type Done = tokio::sync::mpsc::UnboundedSender<Completed>;

/// Done runs written in one statement at most.
const COMPLETE_AT_ONCE: usize = 500;
/// Done runs worth a statement and a commit without waiting for more.
const COMPLETE_ENOUGH: usize = 32;
/// How long a done run may wait for others to share its statement and commit.
const COMPLETE_LINGER: Duration = Duration::from_millis(50);

/// Writes done runs as they come, many per statement (see [`next_batch`]); a
/// write that fails is tried again (see [`stored`]).
pub(super) async fn complete_in_batches(
    s: Scheduler,
    owner: String,
    mut done: tokio::sync::mpsc::UnboundedReceiver<Completed>,
) {
    let mut batch = Vec::new();
    while next_batch(&mut done, &mut batch).await {
        stored(&s, &owner, "storing done runs", || {
            queue::complete_many(&s.ctx.db, s.ctx.clock.now_ms(), &owner, &batch)
        })
        .await;
        batch.clear();
    }
}

/// How long a process keeps trying to store outcomes it has.
const STORE_FOR: Duration = Duration::from_secs(3600);

/// Writes an outcome this process has until it is stored: a database that is away
/// for a moment (a restart, a full disk) must not make the work happen twice. While
/// it tries, with growing pauses, it renews the leases of the runs it holds, so no
/// other process takes them over meanwhile; the write itself changes only runs this
/// process still holds. Only a process that loses its leases (an outage longer than
/// [`LEASE`] on PostgreSQL, where another instance then takes the runs), stops, or
/// tries for [`STORE_FOR`] gives an outcome up — then the run runs again.
async fn stored<F, Fut>(s: &Scheduler, owner: &str, what: &'static str, mut write: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>>,
{
    let mut outage = Outage::default();
    loop {
        let Err(e) = write().await else {
            outage.ended();
            return;
        };
        if matches!(e, sqlx::Error::PoolClosed) || outage.lasted() >= STORE_FOR {
            tracing::error!(error = ?e, "{what} failed; the runs will run again once their leases expire");
            return;
        }
        tokio::time::sleep(outage.failed(what, &e)).await;
        // Still ours: the outcome waits here, not in another process.
        if let Err(e) = queue::renew_leases(&s.ctx.db, s.ctx.clock.now_ms(), owner).await {
            tracing::debug!(error = %e, "renewing leases while storing failed");
        }
    }
}

/// The database as a loop of the scheduler sees it: one log line when it stops
/// answering and one when it is back (not one per try), and a pause between tries
/// that grows from [`Outage::FIRST`] to [`Outage::LONGEST`] (not a busy loop).
#[derive(Debug, Default)]
pub(super) struct Outage {
    since: Option<std::time::Instant>,
    pause: Duration,
}

impl Outage {
    const FIRST: Duration = Duration::from_millis(100);
    const LONGEST: Duration = Duration::from_secs(5);

    /// `what` failed with `e`: how long to wait before trying again.
    pub(super) fn failed(&mut self, what: &str, e: &sqlx::Error) -> Duration {
        if self.since.is_none() {
            tracing::warn!(error = %e, "scheduler: {what} failed; trying again until the database answers");
            self.since = Some(std::time::Instant::now());
            self.pause = Self::FIRST;
        } else {
            self.pause = (self.pause * 2).min(Self::LONGEST);
        }
        self.pause
    }

    /// The database answered: the outage, if any, is over.
    pub(super) fn ended(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(after = ?since.elapsed(), "scheduler: the database answers again");
        }
    }

    /// How long the database has been failing (zero when it answers).
    pub(super) fn lasted(&self) -> Duration {
        self.since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

/// Waits for the next done runs and puts them in `batch`; false once the scheduler
/// stopped and none are left. When few come at once (a job that takes its time,
/// like hashing a password), the first waits up to [`COMPLETE_LINGER`] for others,
/// so a slow stream of runs is not one statement and one commit each; when many
/// come, they are written at once.
async fn next_batch<T>(
    done: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    batch: &mut Vec<T>,
) -> bool {
    if done.recv_many(batch, COMPLETE_AT_ONCE).await == 0 {
        return false;
    }
    let deadline = tokio::time::Instant::now() + COMPLETE_LINGER;
    while batch.len() < COMPLETE_ENOUGH {
        let room = COMPLETE_AT_ONCE - batch.len();
        match tokio::time::timeout_at(deadline, done.recv_many(batch, room)).await {
            Ok(n) if n > 0 => {}
            // The time is up, or the scheduler is stopping.
            _ => break,
        }
    }
    true
}

/// Executes one claimed run, renewing its lease while it works. An attempt that
/// takes longer than `job_timeout` is abandoned and the run retried with backoff,
/// so a mail server that stops answering cannot hold the queue.
pub(super) async fn execute(s: &Scheduler, owner: &str, run: Claimed, done: &Done) {
    let ctx = &s.ctx;
    let late = (ctx.clock.now_ms() - run.due_at).max(0);
    crate::metrics::run_started(Duration::from_millis(late as u64));
    let Some(job) = s.jobs.get(&run.job_kind) else {
        let outcome = Outcome::Failed {
            target: None,
            error: format!("unknown job {:?}", run.job_kind),
        };
        store(s, owner, &run, &outcome).await;
        return;
    };
    let limit = job.timeout(s.job_timeout);
    let work = job.execute(ctx, &run);
    tokio::pin!(work);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = &mut deadline => break Outcome::Retry {
                target: None,
                error: format!("the attempt took longer than {} s and was abandoned", limit.as_secs()),
            },
            _ = tokio::time::sleep(LEASE / 3) => {
                if let Err(e) = queue::renew_lease(&ctx.db, ctx.clock.now_ms(), run.id, owner).await {
                    tracing::warn!(error = %e, "lease renewal failed");
                }
            }
        }
    };
    match &outcome {
        Outcome::Done { .. } => tracing::info!("run done"),
        Outcome::Skipped { reason, .. } => tracing::info!(reason, "run skipped"),
        Outcome::Expired { reason } => tracing::warn!(reason, "run expired"),
        Outcome::Retry { error, .. } => {
            tracing::warn!(attempts = run.attempts, error, "run will be retried")
        }
        Outcome::Failed { error, .. } => tracing::warn!(error, "run failed"),
    }
    if let Outcome::Done {
        target,
        sent,
        detail,
        audit,
    } = outcome
    {
        let completed = Completed {
            run: run.id,
            target,
            sent,
            detail,
            audit,
        };
        // The batch writer is gone (shutting down): this run is written on its own.
        if let Err(unsent) = done.send(completed) {
            let unsent = [unsent.0];
            stored(s, owner, "storing a done run", || {
                queue::complete_many(&s.ctx.db, s.ctx.clock.now_ms(), owner, &unsent)
            })
            .await;
        }
        return;
    }
    store(s, owner, &run, &outcome).await;
}

/// Stores an attempt's outcome through its transition (see [`stored`]).
async fn store(s: &Scheduler, owner: &str, run: &Claimed, outcome: &Outcome) {
    stored(s, owner, "storing a run's outcome", || {
        queue::finish(&s.ctx.db, s.ctx.clock.now_ms(), owner, run, outcome)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: tokio's clock moves only when every task waits, so the figures
    // below are exact, whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn done_runs_that_come_one_by_one_share_a_batch_and_many_are_written_at_once() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut batch = Vec::new();
        // A slow stream: the second comes 10 ms after the first and joins its batch.
        let sender = tx.clone();
        tokio::spawn(async move {
            sender.send(1).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            sender.send(2).unwrap();
        });
        let started = tokio::time::Instant::now();
        assert!(next_batch(&mut rx, &mut batch).await);
        assert_eq!(batch, [1, 2], "one statement for both");
        assert_eq!(
            started.elapsed(),
            COMPLETE_LINGER,
            "the first waited out the linger for more"
        );
        batch.clear();
        // Many at once: written at once, without waiting.
        for i in 0..COMPLETE_AT_ONCE + 10 {
            tx.send(i).unwrap();
        }
        let started = tokio::time::Instant::now();
        assert!(next_batch(&mut rx, &mut batch).await);
        assert_eq!(batch.len(), COMPLETE_AT_ONCE);
        assert_eq!(started.elapsed(), Duration::ZERO, "no wait");
        batch.clear();
        assert!(next_batch(&mut rx, &mut batch).await);
        assert_eq!(batch.len(), 10, "the rest, after the linger");
        batch.clear();
        // Stopped: what is left is written, then no more.
        tx.send(7).unwrap();
        drop(tx);
        let started = tokio::time::Instant::now();
        assert!(next_batch(&mut rx, &mut batch).await);
        assert_eq!(batch, [7]);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a stopping scheduler does not wait"
        );
        batch.clear();
        assert!(!next_batch(&mut rx, &mut batch).await);
    }

    #[test]
    fn a_failing_database_is_tried_with_growing_pauses_that_start_over_once_it_answers() {
        let mut outage = Outage::default();
        let e = sqlx::Error::PoolTimedOut;
        assert_eq!(outage.lasted(), Duration::ZERO);
        let pauses: Vec<Duration> = (0..8).map(|_| outage.failed("claiming runs", &e)).collect();
        assert_eq!(pauses[0], Outage::FIRST);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(*pauses.last().unwrap(), Outage::LONGEST, "capped");
        assert!(outage.since.is_some(), "one outage, from the first failure");
        outage.ended();
        assert!(outage.since.is_none());
        assert_eq!(
            outage.failed("claiming runs", &e),
            Outage::FIRST,
            "a new outage starts over"
        );
    }
}
