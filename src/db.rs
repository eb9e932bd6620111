//! One code path for two engines: SQLite (embedded default) and PostgreSQL
//! (several instances). Queries are written once with `$1` placeholders, which both
//! accept, and run through sqlx's `Any` driver; only pragmas, the write-transaction
//! statement and the migrations folder differ.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Connection, Executor, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which engine is behind the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The engine behind a connection (a transaction handed to a function).
    pub fn of(conn: &sqlx::AnyConnection) -> Self {
        let name = conn.backend_name();
        if name.eq_ignore_ascii_case("postgresql") || name.eq_ignore_ascii_case("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// `sql` as this engine binds it fastest. On SQLite, `$1, $2, …` that appear
    /// in order, each once, become plain `?` (bound by position, the same values).
    /// SQLite's driver finds each numbered parameter by its name, a search through
    /// all of the statement's names: a multi-row statement of 3,000 parameters
    /// spent more time binding than running (a third of the CPU of a drain of
    /// no-op runs). A statement whose numbers are out of order or repeated is
    /// left as it is.
    pub fn positional(self, sql: String) -> String {
        if self == Backend::Postgres {
            return sql;
        }
        let mut out = String::with_capacity(sql.len());
        let mut next = 1u64;
        let mut rest = sql.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits == 0 {
                out.push('$');
                rest = &rest[at + 1..];
                continue;
            }
            if rest[at + 1..at + 1 + digits].parse::<u64>() != Ok(next) {
                return sql;
            }
            out.push('?');
            next += 1;
            rest = &rest[at + 1 + digits..];
        }
        out.push_str(rest);
        out
    }
}

/// Connection pools. On SQLite all writes go through one connection (SQLite has one
/// writer anyway; queueing in the pool beats spinning on `SQLITE_BUSY`) and reads
/// through several; on PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Db {
    pub backend: Backend,
    read: AnyPool,
    write: AnyPool,
    /// Wakes this process's scheduler when runs were enqueued.
    runs_enqueued: std::sync::Arc<tokio::sync::Notify>,
}

pub type Tx = Transaction<'static, Any>;

/// Pool options without sqlx's default ping of every connection it hands out: that
/// ping is a round trip of its own before each statement (on PostgreSQL over the
/// socket, on SQLite through the connection's worker thread), which doubled the
/// round trips of the one-statement reads most pages and jobs make.
///
/// A connection that comes back still inside a transaction is closed, not reused:
/// when a commit or a rollback fails (SQLite with a full disk rolls back by itself,
/// and the rollback sqlx then sends fails), sqlx keeps counting the transaction,
/// and every later `BEGIN` on that connection failed until a restart.
fn unpinged() -> AnyPoolOptions {
    AnyPoolOptions::new()
        .test_before_acquire(false)
        .after_release(|conn, _meta| {
            Box::pin(async move {
                if conn.is_in_transaction() {
                    // SQLite rolls a dropped transaction back on the connection's
                    // own thread: a ping waits for that.
                    conn.ping().await?;
                }
                let clean = !conn.is_in_transaction();
                if !clean {
                    // Debug: the outage it comes with is logged where it is met.
                    tracing::debug!(
                        "a database connection was left inside a failed transaction; it is closed and a new one will be opened"
                    );
                }
                Ok(clean)
            })
        })
}

/// A PostgreSQL pool of at most `max` connections. A connection idle for a while
/// is pinged before use, in case the server hung up meanwhile; a busy one is not
/// (see [`unpinged`]).
async fn postgres_pool(url: &str, max: u32) -> Result<AnyPool, sqlx::Error> {
    unpinged()
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(10) {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
}

impl Db {
    /// Connects, creating the SQLite file (and its folder) when missing.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:")
                .split('?')
                .next()
                .unwrap_or_default();
            if let Some(dir) = std::path::Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            }
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            let options = AnyConnectOptions::from_str(&url)?;
            // No ping before each use: a file does not hang up (see `unpinged`).
            let pragmas = || {
                unpinged().after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                        Ok(())
                    })
                })
            };
            let write = pragmas()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options.clone())
                .await?;
            let read = pragmas().max_connections(8).connect_with(options).await?;
            Ok(Self {
                backend: Backend::Sqlite,
                read,
                write,
                runs_enqueued: Default::default(),
            })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = postgres_pool(url, 12).await?;
            Ok(Self {
                backend: Backend::Postgres,
                read: pool.clone(),
                write: pool,
                runs_enqueued: Default::default(),
            })
        } else {
            anyhow::bail!("unsupported database URL scheme (expected sqlite:// or postgres://)")
        }
    }

    /// The same database through connections of their own, for the work that must
    /// outlive the HTTP server: the scheduler and what it stores at shutdown, and
    /// the API's event writer. On
    /// PostgreSQL a connection belongs to the runtime that opened it, and the HTTP
    /// workers' runtimes end first at a graceful stop — done runs written on
    /// connections a page had opened failed ("the Tokio context is being shut
    /// down") and were run again by another instance. On SQLite (a thread per
    /// connection, one writer) the pools are shared. Wake-ups are shared either way.
    pub async fn background(&self, url: &str) -> anyhow::Result<Self> {
        match self.backend {
            Backend::Sqlite => Ok(self.clone()),
            Backend::Postgres => {
                let pool = postgres_pool(url, 16).await?;
                Ok(Self {
                    backend: Backend::Postgres,
                    read: pool.clone(),
                    write: pool,
                    runs_enqueued: self.runs_enqueued.clone(),
                })
            }
        }
    }

    /// Pool for queries that only read.
    pub fn read(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for single statements that write.
    pub fn write(&self) -> &AnyPool {
        &self.write
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so it cannot fail half-way with a busy error; a busy
    /// answer at the start (another process writing for longer than the busy
    /// timeout) is retried.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Postgres => self.write.begin().await,
            Backend::Sqlite => {
                let mut attempt = 0;
                loop {
                    match self.write.begin_with("BEGIN IMMEDIATE").await {
                        Err(e) if is_busy(&e) && attempt < 5 => {
                            attempt += 1;
                            tracing::warn!(attempt, "database busy, retrying");
                            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                        }
                        other => return other,
                    }
                }
            }
        }
    }

    /// Commits a transaction that may have recorded events (and so enqueued runs),
    /// then wakes the scheduler: it must not look before the commit.
    pub async fn commit(&self, tx: Tx) -> Result<(), sqlx::Error> {
        tx.commit().await?;
        self.runs_enqueued.notify_one();
        Ok(())
    }

    /// Wakes the scheduler (runs were enqueued, retried or the clock moved).
    pub fn wake_scheduler(&self) {
        self.runs_enqueued.notify_one();
    }

    /// Resolves when [`wake_scheduler`](Self::wake_scheduler) was called.
    pub async fn scheduler_woken(&self) {
        self.runs_enqueued.notified().await;
    }

    /// PostgreSQL: vacuums and analyses those of Herald's busiest tables that have
    /// many dead rows or changed much since their statistics were taken —
    /// autovacuum's own thresholds, for servers where it is off or behind. A run is
    /// updated three times on its way through the queue; left alone, the dead rows
    /// and the statistics of an empty table slowed every page that counts runs
    /// (the dashboard: 26 → 4 ms at 32,000 finished runs once vacuumed). Returns the
    /// tables it tidied; nothing to do on SQLite.
    pub async fn tidy(&self) -> Result<Vec<String>, sqlx::Error> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables \
             WHERE relname IN ('job_runs', 'events', 'automations', 'sessions', 'api_idempotency', 'run_hours') \
             AND (n_dead_tup > 50 + 0.2 * n_live_tup OR n_mod_since_analyze > 50 + 0.1 * n_live_tup)",
        )
        .fetch_all(&self.write)
        .await?;
        if tables.is_empty() {
            return Ok(tables);
        }
        // Paced like autovacuum (2 ms of rest per 200 units of work): unpaced, the
        // vacuum of a busy `job_runs` took 360 ms flat out on its own connection,
        // and the pages asked for meanwhile waited up to 106 ms (BENCHMARKS.md).
        let mut conn = self.write.acquire().await?;
        conn.execute("SET vacuum_cost_delay = 2").await?;
        let vacuumed = async {
            for table in &tables {
                // The name is one of the six above.
                let vacuum = format!("VACUUM (ANALYZE) {table}");
                sqlx::raw_sql(sqlx::AssertSqlSafe(vacuum))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok::<(), sqlx::Error>(())
        }
        .await;
        // The connection goes back to the pool as it came.
        conn.execute("RESET vacuum_cost_delay").await?;
        vacuumed.map(|()| tables)
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies the migrations that are missing.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator().run(&self.write).await?;
        Ok(())
    }

    /// Whether every migration this binary knows is applied.
    pub async fn is_migrated(&self) -> Result<bool, sqlx::Error> {
        let latest = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(&self.read)
                .await?;
        Ok(applied.unwrap_or(0) >= latest)
    }

    /// Writes a consistent copy of the SQLite database to `to` while Herald may be
    /// running (`VACUUM INTO` reads one snapshot and never holds the writer). Refuses
    /// an existing file; on PostgreSQL says to use `pg_dump`.
    pub async fn backup_to(&self, to: &std::path::Path) -> Result<(), BackupError> {
        if self.backend == Backend::Postgres {
            return Err(BackupError::Postgres);
        }
        if to.exists() {
            return Err(BackupError::Exists(to.display().to_string()));
        }
        let path = to
            .to_str()
            .ok_or_else(|| BackupError::Exists(to.display().to_string()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.read)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Why a backup was not written.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "this database is PostgreSQL: back it up with pg_dump, e.g. `pg_dump --format=custom --file=herald.dump \"$HERALD_DATABASE_URL\"`, and restore with pg_restore"
    )]
    Postgres,
    #[error("{0} already exists: choose a new file name (a backup never overwrites a file)")]
    Exists(String),
    #[error("the backup failed: {0}")]
    Database(#[from] sqlx::Error),
}

/// SQLite's "database is locked / busy" errors.
pub fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("5" | "6" | "517")),
        _ => false,
    }
}

/// Whether a write failed because a unique key already holds the value.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `cols` columns.
pub fn placeholders(rows: usize, cols: usize) -> String {
    placeholders_from(1, rows, cols)
}

/// [`placeholders`] numbered from `$first`.
pub fn placeholders_from(first: usize, rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (0..cols)
                .map(|c| format!("${}", first + r * cols + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows one pruning statement deletes at most.
pub const BATCH: i64 = 1000;

/// Runs `batch` (which deletes at most [`BATCH`] rows) until a batch comes back
/// short, letting waiting writers in between; returns how many rows went. Pruning
/// this way never holds the single SQLite writer long.
pub async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let done = batch().await?;
        total += done;
        if done < BATCH as u64 {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Deletes with `sql` (`$1` the cutoff, `$2` the batch size) in batches.
pub async fn delete_in_batches(
    db: &Db,
    sql: &'static str,
    cutoff: i64,
) -> Result<u64, sqlx::Error> {
    in_batches(|| async move {
        Ok(sqlx::query(sql)
            .bind(cutoff)
            .bind(BATCH)
            .execute(db.write())
            .await?
            .rows_affected())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_parameters_in_order_become_positional_on_sqlite_only() {
        let sql = format!("INSERT INTO t (a, b) VALUES {}", placeholders(2, 2));
        assert_eq!(sql, "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        assert_eq!(
            Backend::Sqlite.positional(sql.clone()),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)"
        );
        assert_eq!(Backend::Postgres.positional(sql.clone()), sql);
        // $10 is one parameter, not $1 followed by 0.
        let ten = format!("SELECT {}", placeholders(1, 10));
        assert_eq!(
            Backend::Sqlite.positional(ten),
            "SELECT (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        assert_eq!(
            placeholders_from(3, 1, 2),
            "($3, $4)",
            "numbered from the first given"
        );
    }

    #[test]
    fn out_of_order_or_repeated_parameters_are_left_numbered() {
        for sql in [
            "UPDATE t SET a = $2 WHERE b = $1",
            "SELECT $1, $1",
            "SELECT $2",
            "SELECT $1, $3",
        ] {
            assert_eq!(Backend::Sqlite.positional(sql.to_string()), sql);
        }
        // A `$` without digits is not a parameter.
        assert_eq!(
            Backend::Sqlite.positional("SELECT '$', $1".to_string()),
            "SELECT '$', ?"
        );
    }
}
