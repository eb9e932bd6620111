//! The database as requests meet it. While it does not answer (restarting, gone,
//! out of disk), every request that needs it fails the same way; the log gets one
//! line when requests start failing on it and one when they work again, instead of
//! a line per request (a load balancer's probes alone made three a second).

use std::sync::atomic::{AtomicBool, Ordering};

static DOWN: AtomicBool = AtomicBool::new(false);

/// Whether `e` means the database cannot be reached or cannot write (as opposed to
/// a mistake in a statement): a connection that failed or timed out, a server
/// shutting down or refusing connections, a full disk.
pub fn is_outage(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08…), operator intervention such as
            // a shutdown (57…), insufficient resources such as a full disk (53…).
            // SQLite: busy, locked, read-only, I/O error, full, cannot open.
            code.starts_with("08")
                || code.starts_with("57")
                || code.starts_with("53")
                || matches!(
                    code.as_ref(),
                    "5" | "6" | "8" | "10" | "13" | "14" | "517" | "266" | "778" | "1034"
                )
        }
        _ => false,
    }
}

/// A request failed on the database: logged when it is the first since requests
/// last worked, at debug level after that.
pub fn failed(e: &dyn std::fmt::Display) {
    if DOWN.swap(true, Ordering::Relaxed) {
        tracing::debug!(error = %e, "the database is still not answering requests");
    } else {
        tracing::error!(error = %e, "the database is not answering requests; they are answered 503 until it is back");
    }
}

/// A request was answered without a server error: logged when it is the first
/// since the database stopped answering.
pub fn answered() {
    if DOWN.load(Ordering::Relaxed) && DOWN.swap(false, Ordering::Relaxed) {
        tracing::info!("the database answers requests again");
    }
}
