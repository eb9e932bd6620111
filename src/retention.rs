//! Retention: one task that asks each table's owner to delete what is past its
//! keeping period (the periods in Settings) — the queue its finished runs, intake
//! its events, the audit log its entries, the API its idempotency answers, the
//! mailer its deliveries and the reports heard back, tracking its opens and
//! clicks — each
//! in batches, so the single SQLite writer is never held long and pages stay fast.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::db::Db;
use crate::settings::Settings;

const DAY_MS: i64 = 86_400_000;
/// How often the scheduler prunes.
pub const EVERY: Duration = Duration::from_secs(3600);

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub events: u64,
    pub audit_entries: u64,
    /// Emails sent, and bounces and complaints received.
    pub deliveries: u64,
    /// Opens and clicks (their counts stay).
    pub opens_and_clicks: u64,
}

/// One pruning pass at `now_ms` with the retention periods from Settings.
pub async fn prune(db: &Db, now_ms: i64) -> Result<Pruned, sqlx::Error> {
    let settings = Settings::load(db).await?;
    // Runs first: events they held on to may go in the same pass.
    let days = |n: i64| now_ms - n * DAY_MS;
    let runs = crate::scheduler::runs::prune(db, days(settings.run_retention_days)).await?;
    let events = crate::intake::events::prune(db, days(settings.event_retention_days)).await?;
    let audit_entries = crate::audit::prune(db, days(settings.audit_retention_days)).await?;
    crate::api::idempotency::prune(db, now_ms).await?;
    // Emails and what was heard of them are kept as long as the runs that sent them.
    let deliveries = crate::deliveries::prune(db, days(settings.run_retention_days)).await?
        + crate::feedback::store::prune(db, days(settings.run_retention_days)).await?
        + crate::feedback::providers::prune(db, days(settings.run_retention_days)).await?;
    let opens_and_clicks =
        crate::engagement::decide::prune(db, days(settings.engagement_retention_days)).await?;
    let pruned = Pruned {
        runs,
        events,
        audit_entries,
        deliveries,
        opens_and_clicks,
    };
    if pruned != Pruned::default() {
        tracing::info!(
            runs,
            events,
            audit_entries,
            deliveries,
            opens_and_clicks,
            "retention: deleted records past their keeping period"
        );
    }
    Ok(pruned)
}

/// Prunes now and then every [`EVERY`], for as long as it is not dropped (the
/// worker runs it while it holds the scheduler).
pub async fn run(db: Db, clock: Arc<dyn Clock>) {
    loop {
        if let Err(e) = prune(&db, clock.now_ms()).await {
            tracing::warn!(error = %e, "retention: pruning failed; trying again later");
        }
        tokio::time::sleep(EVERY).await;
    }
}
