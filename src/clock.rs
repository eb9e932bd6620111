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
