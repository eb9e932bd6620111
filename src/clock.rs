//! Time comes from a [`Clock`], so tests of timeouts, delays and time frames move
//! time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use jiff::Timestamp;

/// The source of "now" for everything that stores or compares times.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Milliseconds since the Unix epoch: the form times take in the database.
    fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }
}

/// The real time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until moved; for tests.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Arc<Self> {
        Arc::new(Self {
            ms: AtomicI64::new(start.as_millisecond()),
        })
    }

    /// Moves the clock forward (or back, with a negative span).
    pub fn advance(&self, by: std::time::Duration) {
        self.ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn set(&self, to: Timestamp) {
        self.ms.store(to.as_millisecond(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millisecond(self.ms.load(Ordering::SeqCst)).expect("clock in range")
    }
}

/// Where each of the last `days` days (today last) starts in `zone`, and where
/// tomorrow does: `days + 1` times in milliseconds, oldest first. A day has 23 or
/// 25 hours when the clocks change; a day whose start cannot be found (far out of
/// range) is counted as 24 hours back from now.
pub fn day_starts(now_ms: i64, zone: &jiff::tz::TimeZone, days: usize) -> Vec<i64> {
    const DAY_MS: i64 = 86_400_000;
    let today = Timestamp::from_millisecond(now_ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(zone.clone())
        .date();
    let start = |back: i64| -> Option<i64> {
        let day = today.checked_sub(jiff::Span::new().days(back)).ok()?;
        let start = day.to_zoned(zone.clone()).ok()?.start_of_day().ok()?;
        Some(start.timestamp().as_millisecond())
    };
    (-1..days as i64)
        .rev()
        .map(|back| start(back).unwrap_or(now_ms - back * DAY_MS))
        .collect()
}

/// The day that starts at `ms` in `zone`, as the charts name it: "Mon 7 Dec".
pub fn day_label(ms: i64, zone: &jiff::tz::TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(zone.clone()).strftime("%a %-d %b").to_string())
        .unwrap_or_default()
}

/// Shows a stored millisecond time in the zone `zone` (an IANA name; UTC when
/// unknown) with the zone's abbreviation: `2026-11-27 15:05 CET`.
pub fn format_in(ms: i64, zone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string(),
        Err(_) => "—".to_string(),
    }
}

/// Shows a stored millisecond time as `2026-11-27 05:05 UTC`.
pub fn format_utc(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => "—".to_string(),
    }
}
