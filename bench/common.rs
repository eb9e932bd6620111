//! What several benchmark programs set up the same way: an active automation of
//! one job (every day, no end, started an hour ago), and a backlog of
//! *External HTTP Request Received (S)* events recorded through intake.

use herald::automations::model::{EventFilter, State};
use herald::automations::store;
use herald::automations::time_frame::{ALL_DAYS, HolidayRule};
use herald::automations::wizard::{EventPart, JobChoice, TimeFramePart};
use herald::clock::{Clock, SystemClock};
use herald::db::Db;
use herald::events::catalogue::{EventType, NewEvent};

/// Creates `name`, on `event`, running `job` in `zone`, and activates it.
pub async fn active_automation(
    db: &Db,
    name: &str,
    event: EventType,
    zone: &str,
    job: JobChoice,
    now: i64,
) -> anyhow::Result<()> {
    let part = EventPart {
        name: name.into(),
        description: String::new(),
        event,
        filter: EventFilter::Any,
        selection: vec![],
    };
    let frame = TimeFramePart {
        start_at: now - 3_600_000,
        time_zone: zone.into(),
        end_at: None,
        days: ALL_DAYS,
        holidays: HolidayRule::Always,
        notify: vec![],
        notify_days_before: 30,
    };
    let mut tx = db.begin().await?;
    let id = store::create(&mut tx, 1, &part, "UTC", now).await?;
    store::save_job(&mut tx, id, &job, now).await?;
    store::save_time_frame(&mut tx, id, &frame, now).await?;
    store::set_state(&mut tx, id, State::Active, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Records `n` *External HTTP Request Received (S)* events named `name`, 1,000 per
/// transaction, with the runs intake gives them.
pub async fn http_request_events(db: &Db, n: usize, name: &str) -> anyhow::Result<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<NewEvent> = chunk
            .iter()
            .map(|i| NewEvent {
                kind: EventType::ExternalHttpRequestReceived,
                contact_id: None,
                system_user_id: None,
                group_id: None,
                params: serde_json::json!({ "name": name, "data": { "n": i } }),
            })
            .collect();
        let mut tx = db.begin().await?;
        herald::events::store::record_many(&mut tx, SystemClock.now_ms(), &events).await?;
        db.commit(tx).await?;
    }
    Ok(())
}
