//! Automations in the database: reading them (for pages and for intake) and the
//! changes the wizard and the overview make.

use serde::Serialize;

use crate::automations::model::{Automation, State, Status};
use crate::automations::time_frame::{ALL_DAYS, Delay, DelayUnit, HolidayRule, Hours};
use crate::automations::wizard::{EventPart, TimeFramePart};
use crate::db::{Db, Tx};
use crate::events::catalogue::EventType;
use crate::scheduler::enqueue;
use crate::types::AutomationId;

#[derive(sqlx::FromRow)]
struct Row {
    id: AutomationId,
    name: String,
    description: String,
    owner_id: i64,
    owner_name: Option<String>,
    event_type: String,
    event_filter: String,
    selection: String,
    job_kind: Option<String>,
    job_target: Option<String>,
    job_config: String,
    delay_unit: Option<String>,
    delay_value: Option<i64>,
    start_at: Option<i64>,
    time_zone: String,
    end_at: Option<i64>,
    execution_days: i64,
    hours_from: i64,
    hours_to: i64,
    holidays: String,
    notify_user_ids: String,
    notify_days_before: i64,
    state: String,
    activated_at: Option<i64>,
    created_at: i64,
    copied_from: Option<i64>,
}

impl TryFrom<Row> for Automation {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, sqlx::Error> {
        let bad =
            |what: &str| sqlx::Error::Decode(format!("automation {}: bad {what}", r.id).into());
        Ok(Automation {
            id: r.id,
            event: EventType::from_code(&r.event_type).ok_or_else(|| bad("event type"))?,
            filter: serde_json::from_str(&r.event_filter).map_err(|_| bad("event filter"))?,
            selection: serde_json::from_str(&r.selection).map_err(|_| bad("selection"))?,
            job: r.job_kind,
            job_config: serde_json::from_str(&r.job_config).unwrap_or_default(),
            target: r
                .job_target
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            delay: match (
                r.delay_unit.as_deref().and_then(DelayUnit::from_code),
                r.delay_value,
            ) {
                (Some(unit), Some(v)) => Delay::new(unit, u32::try_from(v).unwrap_or(0)),
                _ => None,
            },
            start_at: r.start_at,
            time_zone: r.time_zone,
            end_at: r.end_at,
            days: (r.execution_days & i64::from(ALL_DAYS)) as u8,
            hours: Hours::from_stored(r.hours_from, r.hours_to),
            holidays: HolidayRule::from_code(&r.holidays).unwrap_or(HolidayRule::Always),
            notify: serde_json::from_str(&r.notify_user_ids).unwrap_or_default(),
            notify_days_before: r.notify_days_before,
            state: match r.state.as_str() {
                "active" => State::Active,
                "deactivated" => State::Deactivated,
                _ => State::Inactive,
            },
            activated_at: r.activated_at,
            created_at: r.created_at,
            copied_from: r.copied_from.map(AutomationId),
            name: r.name,
            description: r.description,
            owner_id: r.owner_id,
            owner_name: r.owner_name.unwrap_or_else(|| "(deleted user)".into()),
        })
    }
}

/// What an automation is read with ([`SELECT`] alone, [`find_joined`] with more).
macro_rules! columns {
    () => {
        "a.id, a.name, a.description, a.owner_id, u.name AS owner_name, a.event_type, \
     a.event_filter, a.selection, a.job_kind, a.job_target, a.job_config, a.delay_unit, a.delay_value, a.start_at, a.time_zone, \
     a.end_at, a.execution_days, a.hours_from, a.hours_to, a.holidays, a.notify_user_ids, a.notify_days_before, a.state, a.activated_at, \
     a.created_at, a.copied_from"
    };
}
macro_rules! from {
    () => {
        "FROM automations a LEFT JOIN system_users u ON u.id = a.owner_id"
    };
}
const SELECT: &str = concat!("SELECT ", columns!(), " ", from!());

/// The active automations on `event_type` whose time frame holds `at_ms` and whose
/// job is defined (read inside the transaction that records the event).
pub async fn active_for_event(
    conn: &mut sqlx::AnyConnection,
    event_type: EventType,
    at_ms: i64,
) -> Result<Vec<Automation>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE a.event_type = $1 AND a.state = 'active' AND a.job_kind IS NOT NULL \
         AND a.start_at <= $2 AND (a.end_at IS NULL OR a.end_at > $2)"
    )))
    .bind(event_type.code())
    .bind(at_ms)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Automation::try_from).collect()
}

pub async fn find(db: &Db, id: AutomationId) -> Result<Option<Automation>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE a.id = $1")))
        .bind(id)
        .fetch_optional(db.read())
        .await?;
    row.map(Automation::try_from).transpose()
}

/// An automation and, in the same statement, the caller's `columns` from its
/// `joins` (which may use `$2`, bound to `also`): one round trip where a run would
/// otherwise make two. The caller's columns need names of their own (no `id`).
pub async fn find_joined<T>(
    db: &Db,
    id: AutomationId,
    columns: &str,
    joins: &str,
    also: i64,
) -> Result<Option<(Automation, T)>, sqlx::Error>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    use sqlx::FromRow;
    let sql = format!(
        "SELECT {}, {columns} {} {joins} WHERE a.id = $1",
        columns!(),
        from!()
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(also)
        .fetch_optional(db.read())
        .await?;
    row.map(|r| Ok((Automation::try_from(Row::from_row(&r)?)?, T::from_row(&r)?)))
        .transpose()
}

/// A page of the overview: newest first, optionally one status and a name search.
pub async fn list(
    db: &Db,
    now_ms: i64,
    status: Option<Status>,
    name: &str,
    page: i64,
    per_page: i64,
) -> Result<(Vec<Automation>, bool), sqlx::Error> {
    let mut conditions = vec!["$1 = $1".to_string()];
    if let Some(s) = status {
        conditions.push(s.condition().to_string());
    }
    let pattern = format!(
        "%{}%",
        name.trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    conditions.push("LOWER(a.name) LIKE $2 ESCAPE '\\'".into());
    let sql = format!(
        "{SELECT} WHERE {} ORDER BY a.id DESC LIMIT $3 OFFSET $4",
        conditions.join(" AND ")
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(now_ms)
        .bind(pattern)
        .bind(per_page + 1)
        .bind((page.max(1) - 1) * per_page)
        .fetch_all(db.read())
        .await?;
    let more = rows.len() as i64 > per_page;
    let list = rows
        .into_iter()
        .take(per_page as usize)
        .map(Automation::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((list, more))
}

/// Step 1, parsed.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// Creates an Inactive automation from Edit Event; returns its id.
pub async fn create(
    tx: &mut Tx,
    owner_id: i64,
    part: &EventPart,
    time_zone: &str,
    now_ms: i64,
) -> Result<AutomationId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO automations (name, description, owner_id, event_type, event_filter, selection, time_zone, \
         state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'inactive', $8, $8) RETURNING id",
    )
    .bind(&part.name)
    .bind(&part.description)
    .bind(owner_id)
    .bind(part.event.code())
    .bind(json(&part.filter))
    .bind(json(&part.selection))
    .bind(time_zone)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await
}

/// Saves Edit Event. `job_fits` says whether the job stays (it must combine with the
/// new event); otherwise it is cleared.
pub async fn save_event(
    tx: &mut Tx,
    current: &Automation,
    part: &EventPart,
    job_fits: bool,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE automations SET name = $1, description = $2, event_type = $3, event_filter = $4, selection = $5, \
         job_kind = CASE WHEN $6 = 1 THEN job_kind ELSE NULL END, \
         job_target = CASE WHEN $6 = 1 THEN job_target ELSE NULL END, updated_at = $7, copied_from = NULL WHERE id = $8",
    )
    .bind(&part.name)
    .bind(&part.description)
    .bind(part.event.code())
    .bind(json(&part.filter))
    .bind(json(&part.selection))
    .bind(i64::from(job_fits))
    .bind(now_ms)
    .bind(current.id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Saves Define Job: the job's kind, target, own fields and the delay.
pub async fn save_job(
    tx: &mut Tx,
    id: AutomationId,
    job: &crate::automations::wizard::JobChoice,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE automations SET job_kind = $1, job_target = $2, job_config = $3, delay_unit = $4, delay_value = $5, \
         updated_at = $6, copied_from = NULL WHERE id = $7",
    )
    .bind(&job.kind)
    .bind(job.target.map(|t| json(&t)))
    .bind(job.config.to_string())
    .bind(job.delay.map(|d| d.unit.code()))
    .bind(job.delay.map(|d| i64::from(d.value)))
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn save_time_frame(
    tx: &mut Tx,
    id: AutomationId,
    part: &TimeFramePart,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE automations SET start_at = $1, time_zone = $2, end_at = $3, execution_days = $4, holidays = $5, \
         notify_user_ids = $6, notify_days_before = $7, updated_at = $8, hours_from = $10, hours_to = $11, copied_from = NULL WHERE id = $9",
    )
    .bind(part.start_at)
    .bind(&part.time_zone)
    .bind(part.end_at)
    .bind(i64::from(part.days))
    .bind(part.holidays.code())
    .bind(json(&part.notify))
    .bind(part.notify_days_before)
    .bind(now_ms)
    .bind(id)
    .bind(i64::from(part.hours.from()))
    .bind(i64::from(part.hours.to()))
    .execute(&mut **tx)
    .await?;
    refresh_reminder(tx, id, now_ms).await
}

/// Schedules (or moves, or cancels) the reminder run before the automation's end:
/// due `notify_days_before` days before the end, for an active automation with an
/// end and someone to remind.
pub async fn refresh_reminder(
    tx: &mut Tx,
    id: AutomationId,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let row: Option<(String, Option<i64>, String, i64)> = sqlx::query_as(
        "SELECT state, end_at, notify_user_ids, notify_days_before FROM automations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let wanted = row.and_then(|(state, end, notify, days)| {
        let notify: Vec<i64> = serde_json::from_str(&notify).unwrap_or_default();
        match end {
            Some(end) if state == "active" && !notify.is_empty() && end > now_ms => {
                Some((end - days * 86_400_000).max(now_ms))
            }
            _ => None,
        }
    });
    match wanted {
        Some(due) => enqueue::schedule_reminder(tx, id, due, now_ms).await,
        None => enqueue::cancel_reminder(tx, id, now_ms).await,
    }
}

/// Activates or deactivates. Activation needs a complete automation.
pub async fn set_state(
    tx: &mut Tx,
    id: AutomationId,
    state: State,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    let column = if state == State::Active {
        "activated_at"
    } else {
        "deactivated_at"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE automations SET state = $1, {column} = $2, updated_at = $2, copied_from = NULL WHERE id = $3"
    )))
    .bind(state.code())
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    refresh_reminder(tx, id, now_ms).await
}

/// Copies an automation as a new Inactive one owned by `owner_id`.
pub async fn copy(
    tx: &mut Tx,
    id: AutomationId,
    owner_id: i64,
    now_ms: i64,
) -> Result<AutomationId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO automations (name, description, owner_id, event_type, event_filter, selection, job_kind, \
         job_target, job_config, delay_unit, delay_value, start_at, time_zone, end_at, execution_days, hours_from, hours_to, holidays, notify_user_ids, \
         notify_days_before, state, created_at, updated_at, copied_from) \
         SELECT SUBSTR('Copy of ' || name, 1, 100), description, $1, event_type, event_filter, selection, job_kind, \
         job_target, job_config, delay_unit, delay_value, start_at, time_zone, end_at, execution_days, hours_from, hours_to, holidays, notify_user_ids, \
         notify_days_before, 'inactive', $2, $2, id FROM automations WHERE id = $3 RETURNING id",
    )
    .bind(owner_id)
    .bind(now_ms)
    .bind(id)
    .fetch_one(&mut **tx)
    .await
}

pub async fn delete(tx: &mut Tx, id: AutomationId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM automations WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
