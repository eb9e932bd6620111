//! The queue itself, below the jobs: claims and their order, completions and their
//! owners, the audit notes written with them, the hourly counts the dashboard reads,
//! and the vacuum of the queue table.

use std::time::{Duration, Instant};

use herald::auth::users::Role;
use herald::scheduler::queue::{Claimed, Completed, Target};

use crate::helpers::TestApp;
use crate::scheduler::{contact, password_automation, request_password};

/// `n` password requests of one contact, a minute apart, whose runs are due a day
/// later (the app's own scheduler leaves them alone); the contact and a moment at
/// which they are all due.
async fn runs_due_tomorrow(app: &TestApp, n: usize) -> (i64, i64) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let delay = [
        ("delay", "yes"),
        ("delay_unit", "days"),
        ("delay_value", "1"),
    ];
    password_automation(app, &client, &delay, &[]).await;
    let contact = contact(app, "queue@example.com", "queue's own password").await;
    for _ in 0..n {
        request_password(app, contact).await;
        app.advance(Duration::from_secs(60));
    }
    (contact, app.now_ms() + 2 * 86_400_000)
}

/// Each claimed run as done for `contact`.
fn completed(runs: &[Claimed], contact: i64) -> Vec<Completed> {
    runs.iter()
        .map(|r| Completed {
            run: r.id,
            target: Target {
                kind: herald::scheduler::queue::RunFor::Contact,
                id: contact,
            },
            sent: Vec::new(),
            detail: None,
            audit: None,
        })
        .collect()
}

/// Claims hand out runs whose lease expired first, then due runs in due order, and
/// only as many as asked; a completion by an owner that lost its lease changes
/// nothing, the new owner's does.
async fn claims_keep_order_and_owners(app: TestApp) {
    use herald::scheduler::queue::{self, LEASE};
    let (contact, later) = runs_due_tomorrow(&app, 5).await;
    let first = queue::claim(&app.state.db, later, "first", 2)
        .await
        .unwrap();
    let due: Vec<i64> = first.iter().map(|r| r.due_at).collect();
    assert_eq!(due.len(), 2, "as many as asked");
    assert!(due[0] < due[1], "in due order: {due:?}");
    // The first owner stops renewing; once its lease expired, its runs come first.
    let expired = later + LEASE.as_millis() as i64 + 1;
    let second = queue::claim(&app.state.db, expired, "second", 3)
        .await
        .unwrap();
    let ids = |runs: &[queue::Claimed]| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&second)[..2], ids(&first)[..], "expired leases first");
    assert_eq!(second.len(), 3);
    assert!(second[2].due_at > first[1].due_at);
    assert_eq!(second[0].attempts, 2, "a second attempt");
    let status = async |run: &queue::Claimed| -> (String, Option<String>) {
        sqlx::query_as("SELECT status, lease_owner FROM job_runs WHERE id = $1")
            .bind(run.id)
            .fetch_one(app.state.db.read())
            .await
            .unwrap()
    };
    queue::complete_many(&app.state.db, expired, "first", &completed(&first, contact))
        .await
        .unwrap();
    assert_eq!(
        status(&first[0]).await,
        ("running".into(), Some("second".into())),
        "not the first owner's any more"
    );
    queue::complete_many(
        &app.state.db,
        expired,
        "second",
        &completed(&second, contact),
    )
    .await
    .unwrap();
    for run in &second {
        assert_eq!(status(run).await, ("done".into(), None));
    }
    let left = queue::claim(&app.state.db, expired, "third", 10)
        .await
        .unwrap();
    assert_eq!(left.len(), 2, "the two runs never claimed");
}

on_both_engines!(claims_keep_order_and_owners);

/// PostgreSQL: Herald vacuums its queue once runs left many dead rows (this
/// server runs without autovacuum, as some do); on SQLite there is nothing to do.
async fn the_queue_table_is_tidied(app: TestApp) {
    use herald::db::Backend;
    use herald::scheduler::queue;
    let (contact, later) = runs_due_tomorrow(&app, 60).await;
    // Each run claimed and completed: two dead rows a run.
    let claimed = queue::claim(&app.state.db, later, "tidy", 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 60);
    queue::complete_many(&app.state.db, later, "tidy", &completed(&claimed, contact))
        .await
        .unwrap();
    if app.state.db.backend == Backend::Sqlite {
        assert!(app.state.db.tidy().await.unwrap().is_empty());
        return;
    }
    let vacuumed = async || -> bool {
        sqlx::query_scalar(
                "SELECT last_vacuum IS NOT NULL OR last_autovacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'job_runs'",
            )
            .fetch_one(app.state.db.read())
            .await
            .unwrap()
    };
    assert!(!vacuumed().await, "not before");
    // The server's statistics arrive within a second or so.
    let started = Instant::now();
    let mut tidied = Vec::new();
    while !tidied.contains(&"job_runs".to_string()) && started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        tidied = app.state.db.tidy().await.unwrap();
    }
    assert!(tidied.contains(&"job_runs".to_string()), "{tidied:?}");
    assert!(vacuumed().await);
}

on_both_engines!(the_queue_table_is_tidied);

/// The hourly counts the dashboard reads equal the runs themselves after every kind
/// of change: runs finishing in different hours and ways, a failed run put back in
/// the queue, a pending run cancelled, old runs pruned; and the 24-hour figures
/// count a part-hour at the start of the window run by run.
/// Finished runs counted from `job_runs` itself, by hour and status.
async fn counted_from_runs(db: &herald::db::Db) -> Vec<(i64, String, i64)> {
    sqlx::query_as(
        "SELECT finished_at / 3600000 AS h, status, COUNT(*) FROM job_runs \
         WHERE finished_at IS NOT NULL GROUP BY finished_at / 3600000, status ORDER BY h, status",
    )
    .fetch_all(db.read())
    .await
    .unwrap()
}

/// The hourly counts the triggers keep, by hour and status.
async fn kept_hours(db: &herald::db::Db) -> Vec<(i64, String, i64)> {
    sqlx::query_as("SELECT hour, status, runs FROM run_hours WHERE runs <> 0 ORDER BY hour, status")
        .fetch_all(db.read())
        .await
        .unwrap()
}

/// What `runs_finished_over_three_hours` made.
struct Finished {
    contact: i64,
    /// The first hour, in milliseconds.
    hour: i64,
    /// A minute past two hours after it.
    two_hours: i64,
    claimed: Vec<herald::scheduler::queue::Claimed>,
}

/// Twelve runs claimed and finished: three done at a quarter past an hour, two
/// done and four failed, skipped or expired at three quarters past, three done two
/// hours on.
async fn runs_finished_over_three_hours(app: &TestApp) -> Finished {
    use herald::scheduler::queue::{self, Outcome};
    use herald::scheduler::runs::HOUR_MS;
    let db = &app.state.db;
    let (contact, later) = runs_due_tomorrow(app, 12).await;
    let target = Target {
        kind: herald::scheduler::queue::RunFor::Contact,
        id: contact,
    };
    let hour = (later / HOUR_MS + 1) * HOUR_MS;
    let [quarter, three_quarters, two_hours] = [
        hour + HOUR_MS / 4,
        hour + 3 * HOUR_MS / 4,
        hour + 2 * HOUR_MS + 60_000,
    ];
    let claimed = queue::claim(db, later, "counts", 12).await.unwrap();
    assert_eq!(claimed.len(), 12);
    queue::complete_many(db, quarter, "counts", &completed(&claimed[..3], contact))
        .await
        .unwrap();
    queue::complete_many(
        db,
        three_quarters,
        "counts",
        &completed(&claimed[3..5], contact),
    )
    .await
    .unwrap();
    let outcomes = [
        Outcome::Failed {
            target: Some(target),
            error: "refused".into(),
        },
        Outcome::Skipped {
            target: Some(target),
            reason: "unsubscribed".into(),
        },
        Outcome::Expired { reason: "too late" },
        Outcome::Failed {
            target: Some(target),
            error: "refused".into(),
        },
    ];
    for (run, outcome) in claimed[5..9].iter().zip(&outcomes) {
        queue::finish(db, three_quarters, "counts", run, outcome)
            .await
            .unwrap();
    }
    queue::complete_many(db, two_hours, "counts", &completed(&claimed[9..], contact))
        .await
        .unwrap();
    Finished {
        contact,
        hour,
        two_hours,
        claimed,
    }
}

async fn hourly_counts_follow_every_finish(app: TestApp) {
    use herald::scheduler::runs::{self, HOUR_MS};
    let db = &app.state.db;
    let Finished {
        hour, two_hours, ..
    } = runs_finished_over_three_hours(&app).await;
    assert_eq!(kept_hours(db).await, counted_from_runs(db).await);
    assert_eq!(
        kept_hours(db).await,
        vec![
            (hour / HOUR_MS, "done".to_string(), 5),
            (hour / HOUR_MS, "expired".to_string(), 1),
            (hour / HOUR_MS, "failed".to_string(), 2),
            (hour / HOUR_MS, "skipped".to_string(), 1),
            (hour / HOUR_MS + 2, "done".to_string(), 3),
        ]
    );
    // The 24-hour figures from halfway through the first hour: the three done at a
    // quarter past are before the window, the rest in it.
    let [_, _, _, done, failed] = runs::dashboard_counts(db, two_hours, hour + HOUR_MS / 2)
        .await
        .unwrap();
    assert_eq!((done, failed), (5, 2));
}

async fn hourly_counts_follow_a_retry_and_a_cancel(app: TestApp) {
    use herald::scheduler::runs::{self};
    let db = &app.state.db;
    let Finished {
        contact,
        hour,
        two_hours,
        claimed,
    } = runs_finished_over_three_hours(&app).await;
    // Staff retry a failed run; a new event's run is cancelled.
    let failed_run = claimed[5].id;
    assert!(
        herald::scheduler::staff::requeue(db, claimed[5].automation_id, failed_run, two_hours)
            .await
            .unwrap()
    );
    request_password(&app, contact).await;
    let pending: (herald::types::RunId, herald::types::AutomationId) = sqlx::query_as(
        "SELECT id, automation_id FROM job_runs WHERE status = 'pending' AND id <> $1",
    )
    .bind(failed_run)
    .fetch_one(db.read())
    .await
    .unwrap();
    assert!(
        herald::scheduler::staff::cancel(db, pending.1, pending.0, two_hours)
            .await
            .unwrap()
    );
    assert_eq!(kept_hours(db).await, counted_from_runs(db).await);
    let [_, _, _, _, failed] = runs::dashboard_counts(db, two_hours, hour).await.unwrap();
    assert_eq!(failed, 1, "the retried run is not failed any more");
}

async fn pruning_keeps_the_hourly_counts_and_forgets_empty_hours(app: TestApp) {
    use herald::scheduler::runs::{self, HOUR_MS};
    let db = &app.state.db;
    let Finished { hour, .. } = runs_finished_over_three_hours(&app).await;
    // Retention prunes the first hour's runs; empty hours are forgotten.
    herald::scheduler::runs::prune_finished(db, hour + HOUR_MS, 100)
        .await
        .unwrap();
    assert_eq!(kept_hours(db).await, counted_from_runs(db).await);
    assert!(runs::forget_empty_hours(db).await.unwrap() >= 4);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_hours")
        .fetch_one(db.read())
        .await
        .unwrap();
    assert_eq!(rows as usize, kept_hours(db).await.len());
    let chart = runs::finished_per_hour(db, hour / HOUR_MS).await.unwrap();
    assert_eq!(
        chart.len(),
        1,
        "only the hour two hours on is left: {chart:?}"
    );
    assert_eq!(chart[0].0, hour / HOUR_MS + 2, "{chart:?}");
    assert_eq!(chart[0].2, 3, "{chart:?}");
}

async fn runs_skipped_at_intake_are_counted_as_they_are_inserted(app: TestApp) {
    use herald::scheduler::runs::HOUR_MS;
    let db = &app.state.db;
    let Finished {
        two_hours, claimed, ..
    } = runs_finished_over_three_hours(&app).await;
    // Runs skipped at intake are inserted finished: counted as they are inserted.
    use herald::scheduler::enqueue::{NewRun, enqueue};
    use herald::types::EventId;
    let skipped = |event| NewRun {
        automation_id: claimed[0].automation_id,
        event_id: EventId(event),
        job_kind: "send_new_password_to_contact",
        due_at: two_hours,
        skipped_because: Some("no allowed day"),
    };
    let mut conn = db.write().acquire().await.unwrap();
    let inserted = enqueue(&mut conn, two_hours, &[skipped(-1), skipped(-2)])
        .await
        .unwrap();
    drop(conn);
    assert_eq!(inserted, 2);
    assert_eq!(kept_hours(db).await, counted_from_runs(db).await);
    assert!(
        kept_hours(db)
            .await
            .contains(&(two_hours / HOUR_MS, "skipped".to_string(), 2)),
        "{:?}",
        kept_hours(db).await
    );
}

on_both_engines!(
    hourly_counts_follow_every_finish,
    hourly_counts_follow_a_retry_and_a_cancel,
    pruning_keeps_the_hourly_counts_and_forgets_empty_hours,
    runs_skipped_at_intake_are_counted_as_they_are_inserted
);

/// Done runs and the audit notes their jobs left are written together, several in
/// one go; a note records work that was done, so it is kept even when the run's
/// lease had passed to another worker (whose outcome then decides the run).
async fn audit_notes_are_written_with_the_completion(app: TestApp) {
    use herald::audit::Action;
    use herald::scheduler::queue::{self, AuditNote};
    let db = &app.state.db;
    let (contact, later) = runs_due_tomorrow(&app, 4).await;
    let claimed = queue::claim(db, later, "notes", 4).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let note = |to: &str| {
        Some(Box::new(AuditNote {
            action: Action::PasswordDelivered,
            target: to.into(),
            detail: format!("to {to}"),
        }))
    };
    let mut done = completed(&claimed, contact);
    done[0].audit = note("a@example.com");
    done[2].audit = note("b@example.com");
    queue::complete_many(db, later, "notes", &done[..3])
        .await
        .unwrap();
    done[3].audit = note("c@example.com");
    queue::complete_many(db, later, "a worker that lost the run", &done[3..])
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for run in &claimed {
        let status: String = sqlx::query_scalar("SELECT status FROM job_runs WHERE id = $1")
            .bind(run.id)
            .fetch_one(db.read())
            .await
            .unwrap();
        statuses.push(status);
    }
    assert_eq!(statuses, ["done", "done", "done", "running"]);
    let entries: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT at, actor, target, detail FROM audit_log WHERE action = 'password.delivered' ORDER BY id",
        )
        .fetch_all(db.read())
        .await
        .unwrap();
    let expected = |to: &str| {
        (
            later,
            "scheduler".to_string(),
            to.to_string(),
            format!("to {to}"),
        )
    };
    assert_eq!(
        entries,
        [
            expected("a@example.com"),
            expected("b@example.com"),
            expected("c@example.com")
        ]
    );
}

on_both_engines!(audit_notes_are_written_with_the_completion);

/// A process that waits to store outcomes keeps all its leases; at shutdown it
/// hands its runs back, and on PostgreSQL the other instances hear of it at once.
async fn leases_are_kept_while_waiting_and_handed_back_with_a_wake_up(app: TestApp) {
    use herald::db::Backend;
    use herald::scheduler::queue::{self, LEASE};
    let (_, later) = runs_due_tomorrow(&app, 3).await;
    let mine = queue::claim(&app.state.db, later, "leaving", 2)
        .await
        .unwrap();
    let theirs = queue::claim(&app.state.db, later, "staying", 1)
        .await
        .unwrap();
    let lease_of = async |id| -> Option<i64> {
        sqlx::query_scalar("SELECT lease_expires_at FROM job_runs WHERE id = $1")
            .bind(id)
            .fetch_one(app.state.db.read())
            .await
            .unwrap()
    };
    let renewed_at = later + 10_000;
    queue::renew_leases(&app.state.db, renewed_at, "leaving")
        .await
        .unwrap();
    let expected = Some(renewed_at + LEASE.as_millis() as i64);
    for run in &mine {
        assert_eq!(lease_of(run.id).await, expected);
    }
    assert_eq!(
        lease_of(theirs[0].id).await,
        Some(later + LEASE.as_millis() as i64),
        "not another owner's"
    );

    let mut listener = match app.state.db.backend {
        Backend::Postgres => {
            let mut l = sqlx::postgres::PgListener::connect(app.database_url())
                .await
                .unwrap();
            l.listen("herald_runs").await.unwrap();
            Some(l)
        }
        Backend::Sqlite => None,
    };
    queue::release(&app.state.db, "leaving").await.unwrap();
    let statuses: Vec<String> = sqlx::query_scalar("SELECT status FROM job_runs ORDER BY id")
        .fetch_all(app.state.db.read())
        .await
        .unwrap();
    assert_eq!(
        statuses.iter().filter(|s| *s == "pending").count(),
        2,
        "{statuses:?}"
    );
    if let Some(l) = &mut listener {
        let heard = tokio::time::timeout(Duration::from_secs(30), l.recv()).await;
        assert!(matches!(heard, Ok(Ok(_))), "no wake-up: {heard:?}");
    }
}

on_both_engines!(leases_are_kept_while_waiting_and_handed_back_with_a_wake_up);
