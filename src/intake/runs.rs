//! Intake: in the transaction that records an event, one run for every active
//! automation the event triggers, due at the event time plus the delay, moved to an
//! allowed day of the automation's time frame.

use std::collections::BTreeSet;

use jiff::Timestamp;
use sqlx::AnyConnection;

use crate::automations::model::Automation;
use crate::automations::time_frame::{Calendar, DelayUnit, HoursMiss, clock};
use crate::events::catalogue::{EventType, NewEvent};
use crate::scheduler::enqueue::{self, NewRun};
use crate::types::EventId;

/// Why a run is stored as skipped at once.
pub const NO_ALLOWED_DAY: &str = "no allowed day left before the time frame ends";
/// Runs caused by a chain of more runs than this are skipped (loop protection).
pub const MAX_CHAIN_DEPTH: u64 = 5;
/// Why a run of a too deep chain is skipped.
pub const CHAIN_TOO_DEEP: &str = "automation chain too deep";

/// An automation with the due time of its runs for one moment (see [`due_time`]).
type Due<'a> = (&'a Automation, Result<i64, i64>);

/// Enqueues a run for every active automation the event triggers (inside the
/// event's transaction); a run with no allowed day left is stored as skipped.
#[tracing::instrument(skip(conn, event), fields(event = %event_id, kind = event.kind.code()))]
pub async fn intake(
    conn: &mut AnyConnection,
    event_id: EventId,
    at_ms: i64,
    event: &NewEvent,
) -> Result<u64, sqlx::Error> {
    Ok(intake_many(conn, at_ms, &[(event_id, event)])
        .await?
        .total())
}

/// The runs an intake created: how many, and per automation the runs it planned
/// (a CSV import's report names them). The two differ only for an event taken in
/// twice, whose runs already exist — never for the new events of an import.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Started {
    pub enqueued: u64,
    pub by_automation: Vec<(crate::types::AutomationId, u64)>,
}

impl Started {
    pub fn total(&self) -> u64 {
        self.enqueued
    }
}

/// [`intake`] for many events of one moment: the automations are read once per
/// event type, and the runs written with multi-row statements.
pub async fn intake_many(
    conn: &mut AnyConnection,
    at_ms: i64,
    events: &[(EventId, &NewEvent)],
) -> Result<Started, sqlx::Error> {
    let mut automations: Vec<(EventType, Vec<Automation>)> = Vec::new();
    for (_, e) in events {
        if !automations.iter().any(|(k, _)| *k == e.kind) {
            let active =
                crate::automations::store::active_for_event(&mut *conn, e.kind, at_ms).await?;
            automations.push((e.kind, active));
        }
    }
    if automations.iter().all(|(_, a)| a.is_empty()) {
        return Ok(Started::default());
    }
    let holidays = crate::settings::holiday_dates(&mut *conn).await?;
    // Every event of the call happened at `at_ms`: each automation's due time is
    // worked out once, not once per event.
    let automations: Vec<(EventType, Vec<Due>)> = automations
        .iter()
        .map(|(kind, list)| {
            let due = list.iter().map(|a| (a, due_time(a, at_ms, &holidays)));
            (*kind, due.collect())
        })
        .collect();
    let mut runs: Vec<NewRun> = Vec::new();
    for (event_id, event) in events {
        let candidates = automations
            .iter()
            .find(|(k, _)| *k == event.kind)
            .map_or(&[][..], |(_, a)| a.as_slice());
        for (a, due) in candidates.iter().filter(|(a, _)| a.filter.matches(event)) {
            let (due_at, skipped_because) = match *due {
                // The run would be one link deeper than the event.
                Ok(due) if event.chain_depth() >= MAX_CHAIN_DEPTH => (due, Some(CHAIN_TOO_DEEP)),
                Ok(due) => (due, None),
                Err(due) => (due, Some(NO_ALLOWED_DAY)),
            };
            runs.push(NewRun {
                automation_id: a.id,
                event_id: *event_id,
                job_kind: a.job.as_deref().unwrap_or_default(),
                due_at,
                skipped_because,
            });
        }
    }
    let enqueued = enqueue::enqueue(conn, at_ms, &runs).await?;
    tracing::debug!(enqueued, "runs enqueued");
    let mut by_automation: Vec<(crate::types::AutomationId, u64)> = Vec::new();
    for run in &runs {
        match by_automation
            .iter_mut()
            .find(|(a, _)| *a == run.automation_id)
        {
            Some((_, n)) => *n += 1,
            None => by_automation.push((run.automation_id, 1)),
        }
    }
    Ok(Started {
        enqueued,
        by_automation,
    })
}

/// The due time of a run of `a` for an event at `at_ms`: `Ok` on an allowed day,
/// `Err` (with the unmoved time) when no allowed day is left before the end.
pub fn due_time(
    a: &Automation,
    at_ms: i64,
    holidays: &BTreeSet<jiff::civil::Date>,
) -> Result<i64, i64> {
    due_time_explained(a, at_ms, holidays, None)
}

/// [`due_time`], and — when `steps` is given — each step that produced it, in
/// words (Try it). The scheduler passes no `steps`: one computation for both, so
/// the explanation cannot disagree with the run.
pub fn due_time_explained(
    a: &Automation,
    at_ms: i64,
    holidays: &BTreeSet<jiff::civil::Date>,
    mut steps: Option<&mut Vec<String>>,
) -> Result<i64, i64> {
    let zone = a.zone();
    let shown = |t: Timestamp| {
        t.to_zoned(zone.clone())
            .strftime("%a %Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let explain = steps.is_some();
    let mut say = |text: String| {
        if let Some(s) = steps.as_deref_mut() {
            s.push(text);
        }
    };
    let event_at = Timestamp::from_millisecond(at_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let due = a.delay.map_or(event_at, |d| d.apply(event_at, &zone));
    match a.delay {
        _ if !explain => {}
        None => say(format!("Event {}; no delay.", shown(event_at))),
        Some(d) => {
            say(format!(
                "Event {} + {} {} = {}.",
                shown(event_at),
                d.value,
                d.unit.label().to_lowercase(),
                shown(due)
            ));
            let (before, after) = (
                event_at.to_zoned(zone.clone()).offset(),
                due.to_zoned(zone.clone()).offset(),
            );
            if before != after {
                say(format!(
                    "A daylight-saving change lies in between (UTC{before} → UTC{after}): {}.",
                    if matches!(d.unit, DelayUnit::Days | DelayUnit::Weeks) {
                        "days and weeks keep the time of day"
                    } else {
                        "minutes and hours are counted as elapsed time"
                    }
                ));
            }
        }
    }
    let calendar = Calendar {
        zone: zone.clone(),
        days: a.days,
        hours: a.hours,
        holidays: a.holidays,
        holiday_dates: holidays.clone(),
    };
    let end = a.end_at.and_then(|e| Timestamp::from_millisecond(e).ok());
    if explain {
        let mut date = due.to_zoned(zone.clone()).date();
        let hours = a.hours.text();
        let time = due.to_zoned(zone.clone()).strftime("%H:%M").to_string();
        let day_checks = match calendar.allows(date).then(|| calendar.hours_miss(due)) {
            // An allowed day, and inside the hours (or before them): no day moves.
            Some(None) => 0,
            Some(Some(HoursMiss::Before)) => {
                say(format!(
                    "{time} is before the execution hours ({hours}) → their start that day."
                ));
                0
            }
            Some(Some(HoursMiss::After)) => {
                say(format!(
                    "{time} is after the execution hours ({hours}) → the next day."
                ));
                date = date.tomorrow().unwrap_or(date);
                3
            }
            None => 3,
        };
        for _ in 0..day_checks {
            match calendar.why_not(date) {
                Some(reason) => say(format!("{reason} → the next day.")),
                None => break,
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
    }
    match calendar.next_allowed(due, end) {
        Some(t) => {
            if explain {
                let opening = if a.hours.is_all_day() {
                    "00:00".to_string()
                } else {
                    format!(
                        "{}, the start of the execution hours",
                        clock(a.hours.from())
                    )
                };
                let same_day = t.to_zoned(zone.clone()).date() == due.to_zoned(zone.clone()).date();
                if t != due {
                    say(format!(
                        "→ {} ({opening}{}).",
                        shown(t),
                        if same_day {
                            ""
                        } else {
                            " of the next allowed day"
                        }
                    ));
                }
                say(format!(
                    "Due {} = {} UTC.",
                    shown(t),
                    t.strftime("%Y-%m-%d %H:%M")
                ));
            }
            Ok(t.as_millisecond())
        }
        None if !explain => Err(due.as_millisecond()),
        None => {
            say(match end {
                Some(e) => format!(
                    "No allowed day and hour before the time frame ends ({}) → the run would be skipped.",
                    shown(e)
                ),
                None => "No allowed day within two years → the run would be skipped.".into(),
            });
            Err(due.as_millisecond())
        }
    }
}
