//! Time-frame arithmetic in the automation's time zone: delays, execution days and
//! holidays. Everything goes through jiff, so daylight-saving changes are handled
//! by the zone database, never by hand-written offsets.

use std::collections::BTreeSet;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::{Deserialize, Serialize};

/// The unit of a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DelayUnit {
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl DelayUnit {
    pub const ALL: [DelayUnit; 4] = [
        DelayUnit::Minutes,
        DelayUnit::Hours,
        DelayUnit::Days,
        DelayUnit::Weeks,
    ];

    pub fn code(self) -> &'static str {
        match self {
            DelayUnit::Minutes => "minutes",
            DelayUnit::Hours => "hours",
            DelayUnit::Days => "days",
            DelayUnit::Weeks => "weeks",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DelayUnit::Minutes => "Minutes",
            DelayUnit::Hours => "Hours",
            DelayUnit::Days => "Days",
            DelayUnit::Weeks => "Weeks",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.code() == code)
    }

    fn minutes(self) -> u64 {
        match self {
            DelayUnit::Minutes => 1,
            DelayUnit::Hours => 60,
            DelayUnit::Days => 24 * 60,
            DelayUnit::Weeks => 7 * 24 * 60,
        }
    }
}

/// The longest delay allowed: 365 days.
pub const MAX_DELAY_MINUTES: u64 = 365 * 24 * 60;

/// A delay between the event and the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delay {
    pub unit: DelayUnit,
    pub value: u32,
}

impl Delay {
    /// A delay of `value` `unit`s, if it is at least 1 and at most 365 days.
    pub fn new(unit: DelayUnit, value: u32) -> Option<Self> {
        (value >= 1 && unit.minutes() * u64::from(value) <= MAX_DELAY_MINUTES)
            .then_some(Self { unit, value })
    }

    /// When a job for an event at `event` is due. Minutes and hours are elapsed
    /// time; days and weeks keep the wall-clock time in `zone` across
    /// daylight-saving changes (a "1 day" delay from 12:00 is 12:00 the next day).
    pub fn apply(&self, event: Timestamp, zone: &TimeZone) -> Timestamp {
        let v = i64::from(self.value);
        let zoned = event.to_zoned(zone.clone());
        let due = match self.unit {
            DelayUnit::Minutes => zoned.checked_add(v.minutes()),
            DelayUnit::Hours => zoned.checked_add(v.hours()),
            DelayUnit::Days => zoned.checked_add(v.days()),
            DelayUnit::Weeks => zoned.checked_add(v.weeks()),
        };
        due.map_or(event, |z| z.timestamp())
    }
}

/// How holidays (from the calendar in settings) count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HolidayRule {
    Always,
    NeverOnHolidays,
    OnlyOnHolidays,
}

impl HolidayRule {
    pub const ALL: [HolidayRule; 3] = [
        HolidayRule::Always,
        HolidayRule::NeverOnHolidays,
        HolidayRule::OnlyOnHolidays,
    ];

    pub fn code(self) -> &'static str {
        match self {
            HolidayRule::Always => "always",
            HolidayRule::NeverOnHolidays => "never",
            HolidayRule::OnlyOnHolidays => "only",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            HolidayRule::Always => "Always",
            HolidayRule::NeverOnHolidays => "Never on Holidays",
            HolidayRule::OnlyOnHolidays => "Only on Holidays",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.code() == code)
    }
}

/// Execution days as a bit set, Monday = bit 0 … Sunday = bit 6.
pub const ALL_DAYS: u8 = 0b111_1111;

pub const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "Mon"),
    (Weekday::Tuesday, "Tue"),
    (Weekday::Wednesday, "Wed"),
    (Weekday::Thursday, "Thu"),
    (Weekday::Friday, "Fri"),
    (Weekday::Saturday, "Sat"),
    (Weekday::Sunday, "Sun"),
];

pub fn day_bit(day: Weekday) -> u8 {
    1 << (day.to_monday_zero_offset() as u8)
}

/// The minutes of a day in a day (the end of the last hour).
pub const DAY_MINUTES: u16 = 24 * 60;

/// Execution hours: the part of an allowed day in which a job may start, from
/// `from` (inclusive) to `to` (exclusive), in minutes after 00:00 in the
/// automation's zone. `to` is at most 24:00; a window over midnight is two
/// automations' work, not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    from: u16,
    to: u16,
}

impl Hours {
    /// All day: 00:00–24:00.
    pub const ALL_DAY: Hours = Hours {
        from: 0,
        to: DAY_MINUTES,
    };

    /// The window `from`–`to` (minutes after 00:00), if it starts before it ends
    /// and ends by 24:00.
    pub fn new(from: u16, to: u16) -> Option<Self> {
        (from < to && to <= DAY_MINUTES).then_some(Self { from, to })
    }

    /// As stored; a row that does not make a window reads as all day.
    pub fn from_stored(from: i64, to: i64) -> Self {
        match (u16::try_from(from), u16::try_from(to)) {
            (Ok(f), Ok(t)) => Self::new(f, t).unwrap_or(Self::ALL_DAY),
            _ => Self::ALL_DAY,
        }
    }

    pub fn from(self) -> u16 {
        self.from
    }

    pub fn to(self) -> u16 {
        self.to
    }

    pub fn is_all_day(self) -> bool {
        self == Self::ALL_DAY
    }

    /// Whether `minute` (after 00:00) lies in the window.
    pub fn contains(self, minute: u16) -> bool {
        (self.from..self.to).contains(&minute)
    }

    /// The window in words: "09:00–17:00", "All day".
    pub fn text(self) -> String {
        if self.is_all_day() {
            "All day".into()
        } else {
            format!("{}–{}", clock(self.from), clock(self.to))
        }
    }
}

/// Minutes after 00:00 as `HH:MM` (24:00 for the end of the day).
pub fn clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The minute of the day of a zoned time (seconds dropped).
fn minute_of_day(z: &Zoned) -> u16 {
    z.hour() as u16 * 60 + z.minute() as u16
}

/// Which days, and which hours of them, a job may run on.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub zone: TimeZone,
    pub days: u8,
    pub hours: Hours,
    pub holidays: HolidayRule,
    pub holiday_dates: BTreeSet<Date>,
}

impl Calendar {
    pub fn allows(&self, date: Date) -> bool {
        if self.days & day_bit(date.weekday()) == 0 {
            return false;
        }
        let holiday = self.holiday_dates.contains(&date);
        match self.holidays {
            HolidayRule::Always => true,
            HolidayRule::NeverOnHolidays => !holiday,
            HolidayRule::OnlyOnHolidays => holiday,
        }
    }

    /// Why `date` is not allowed, in words; `None` when it is.
    pub fn why_not(&self, date: Date) -> Option<String> {
        let day = date.strftime("%A %Y-%m-%d");
        if self.days & day_bit(date.weekday()) == 0 {
            return Some(format!(
                "{day}: {} is not an execution day",
                date.strftime("%A")
            ));
        }
        let holiday = self.holiday_dates.contains(&date);
        match self.holidays {
            HolidayRule::NeverOnHolidays if holiday => {
                Some(format!("{day} is a holiday (Never on Holidays)"))
            }
            HolidayRule::OnlyOnHolidays if !holiday => {
                Some(format!("{day} is not a holiday (Only on Holidays)"))
            }
            _ => None,
        }
    }

    /// Where `due` stands against the execution hours of its own day, when that
    /// day is allowed: `None` inside them, else whether it is before or after.
    pub fn hours_miss(&self, due: Timestamp) -> Option<HoursMiss> {
        let zoned = due.to_zoned(self.zone.clone());
        let minute = minute_of_day(&zoned);
        match self.hours {
            h if h.contains(minute) => None,
            h if minute < h.from => Some(HoursMiss::Before),
            _ => Some(HoursMiss::After),
        }
    }

    /// The start of the execution hours on `date` in the zone (the first instant
    /// of the day for 00:00, even where a DST change skips midnight; a start
    /// skipped by a DST change moves forward by the gap).
    fn opening(&self, date: Date) -> Option<Timestamp> {
        let zoned = if self.hours.from == 0 {
            date.to_zoned(self.zone.clone()).ok()?.start_of_day().ok()?
        } else {
            let (h, m) = (self.hours.from / 60, self.hours.from % 60);
            date.at(h as i8, m as i8, 0, 0)
                .to_zoned(self.zone.clone())
                .ok()?
        };
        Some(zoned.timestamp())
    }

    /// `due` if its day (in the zone) is allowed and it lies in the execution
    /// hours; the start of the hours that day when it is earlier; otherwise the
    /// start of the hours on the next allowed day (00:00 when all day). `None`
    /// when no allowed time comes before `end` (or within two years).
    pub fn next_allowed(&self, due: Timestamp, end: Option<Timestamp>) -> Option<Timestamp> {
        let before_end = |t: Timestamp| Some(t).filter(|t| end.is_none_or(|e| *t < e));
        let zoned: Zoned = due.to_zoned(self.zone.clone());
        let mut date = zoned.date();
        if self.allows(date) {
            match self.hours_miss(due) {
                None => return before_end(due),
                Some(HoursMiss::Before) => return before_end(self.opening(date)?.max(due)),
                Some(HoursMiss::After) => {}
            }
        }
        for _ in 0..(366 * 2) {
            date = date.tomorrow().ok()?;
            if self.allows(date) {
                return before_end(self.opening(date)?);
            }
        }
        None
    }
}

/// How a due time on an allowed day misses the execution hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoursMiss {
    Before,
    After,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::parse_holidays;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn delays_are_bounded() {
        assert!(Delay::new(DelayUnit::Minutes, 0).is_none());
        assert!(Delay::new(DelayUnit::Days, 365).is_some());
        assert!(Delay::new(DelayUnit::Days, 366).is_none());
        assert!(Delay::new(DelayUnit::Weeks, 52).is_some());
        assert!(Delay::new(DelayUnit::Weeks, 53).is_none());
        assert!(Delay::new(DelayUnit::Minutes, 525_600).is_some());
        assert!(Delay::new(DelayUnit::Minutes, 525_601).is_none());
    }

    #[test]
    fn day_delays_keep_the_wall_clock_across_dst() {
        let tz = berlin();
        // Spring forward, 2026-03-29 02:00 → 03:00: the day has 23 hours.
        let sat_noon = at("2026-03-28T11:00:00Z"); // 12:00 CET
        let d = Delay::new(DelayUnit::Days, 1).unwrap().apply(sat_noon, &tz);
        assert_eq!(d, at("2026-03-29T10:00:00Z")); // 12:00 CEST
        let h = Delay::new(DelayUnit::Hours, 24)
            .unwrap()
            .apply(sat_noon, &tz);
        assert_eq!(h, at("2026-03-29T11:00:00Z")); // 13:00 CEST
        // Fall back, 2026-10-25 03:00 → 02:00: the day has 25 hours.
        let sat_noon = at("2026-10-24T10:00:00Z"); // 12:00 CEST
        let d = Delay::new(DelayUnit::Days, 1).unwrap().apply(sat_noon, &tz);
        assert_eq!(d, at("2026-10-25T11:00:00Z")); // 12:00 CET
        let m = Delay::new(DelayUnit::Minutes, 90)
            .unwrap()
            .apply(at("2026-10-25T00:30:00Z"), &tz);
        assert_eq!(m, at("2026-10-25T02:00:00Z"));
    }

    #[test]
    fn excluded_days_move_to_midnight_of_the_next_allowed_day_in_the_zone() {
        let weekdays_only = Calendar {
            zone: berlin(),
            days: ALL_DAYS & !day_bit(Weekday::Saturday) & !day_bit(Weekday::Sunday),
            hours: Hours::ALL_DAY,
            holidays: HolidayRule::Always,
            holiday_dates: BTreeSet::new(),
        };
        // Sunday 2026-03-29 (the DST day) 10:00 CEST → Monday 00:00 CEST = Sunday 22:00Z.
        assert_eq!(
            weekdays_only.next_allowed(at("2026-03-29T08:00:00Z"), None),
            Some(at("2026-03-29T22:00:00Z"))
        );
        // Saturday 2026-03-28 23:30 CET → Monday 00:00 CEST.
        assert_eq!(
            weekdays_only.next_allowed(at("2026-03-28T22:30:00Z"), None),
            Some(at("2026-03-29T22:00:00Z"))
        );
        // Sunday 2026-10-25 (fall back) → Monday 00:00 CET = Sunday 23:00Z.
        assert_eq!(
            weekdays_only.next_allowed(at("2026-10-25T09:00:00Z"), None),
            Some(at("2026-10-25T23:00:00Z"))
        );
        // An allowed day stays as it is.
        assert_eq!(
            weekdays_only.next_allowed(at("2026-10-26T09:00:00Z"), None),
            Some(at("2026-10-26T09:00:00Z"))
        );
        // Friday 23:30 UTC is already Saturday in Berlin.
        assert_eq!(
            weekdays_only.next_allowed(at("2026-10-23T23:30:00Z"), None),
            Some(at("2026-10-25T23:00:00Z"))
        );
        // No allowed day before the end.
        assert_eq!(
            weekdays_only
                .next_allowed(at("2026-10-24T10:00:00Z"), Some(at("2026-10-25T12:00:00Z"))),
            None
        );
    }

    #[test]
    fn execution_hours_move_early_times_to_the_opening_and_late_times_to_the_next_day() {
        let office = Calendar {
            zone: berlin(),
            days: ALL_DAYS & !day_bit(Weekday::Saturday) & !day_bit(Weekday::Sunday),
            hours: Hours::new(9 * 60, 17 * 60).unwrap(),
            holidays: HolidayRule::Always,
            holiday_dates: BTreeSet::new(),
        };
        // Saturday sign-up → Monday 09:00 CEST, not 00:00 (Monday after the spring change).
        assert_eq!(
            office.next_allowed(at("2026-03-28T15:00:00Z"), None),
            Some(at("2026-03-30T07:00:00Z"))
        );
        // Tuesday 07:30 CET → 09:00 the same day.
        assert_eq!(
            office.next_allowed(at("2026-03-24T06:30:00Z"), None),
            Some(at("2026-03-24T08:00:00Z"))
        );
        // Inside the hours: unchanged; 16:59 still in, 17:00 out.
        assert_eq!(
            office.next_allowed(at("2026-03-24T15:59:00Z"), None),
            Some(at("2026-03-24T15:59:00Z"))
        );
        // Tuesday 17:00 CET → Wednesday 09:00 CET.
        assert_eq!(
            office.next_allowed(at("2026-03-24T16:00:00Z"), None),
            Some(at("2026-03-25T08:00:00Z"))
        );
        // Friday 18:00 CEST after the fall change → Monday 09:00 CET.
        assert_eq!(
            office.next_allowed(at("2026-10-23T16:00:00Z"), None),
            Some(at("2026-10-26T08:00:00Z"))
        );
        // Ends before the next opening → nothing.
        assert_eq!(
            office.next_allowed(at("2026-03-24T16:00:00Z"), Some(at("2026-03-25T07:59:00Z"))),
            None
        );
        // An opening inside the spring gap (02:30 on 2026-03-29) moves forward by the gap.
        let night = Calendar {
            hours: Hours::new(2 * 60 + 30, 4 * 60).unwrap(),
            days: ALL_DAYS,
            ..office.clone()
        };
        assert_eq!(
            night.next_allowed(at("2026-03-28T22:00:00Z"), None), // Saturday 23:00 CET
            Some(at("2026-03-29T01:30:00Z"))                      // 03:30 CEST
        );
        assert_eq!(
            Hours::new(17 * 60, 9 * 60),
            None,
            "a window over midnight is refused"
        );
        assert_eq!(Hours::from_stored(0, 2000), Hours::ALL_DAY);
        assert_eq!(office.hours.text(), "09:00–17:00");
    }

    #[test]
    fn holidays_are_skipped_or_required() {
        let dates = parse_holidays("2026-12-25 Christmas\n\n2026-12-26\n").unwrap();
        let mut cal = Calendar {
            zone: berlin(),
            days: ALL_DAYS,
            hours: Hours::ALL_DAY,
            holidays: HolidayRule::NeverOnHolidays,
            holiday_dates: dates,
        };
        assert_eq!(
            cal.next_allowed(at("2026-12-25T09:00:00Z"), None),
            Some(at("2026-12-26T23:00:00Z"))
        );
        cal.holidays = HolidayRule::OnlyOnHolidays;
        assert_eq!(
            cal.next_allowed(at("2026-12-20T09:00:00Z"), None),
            Some(at("2026-12-24T23:00:00Z"))
        );
        assert_eq!(
            cal.next_allowed(at("2026-12-27T09:00:00Z"), None),
            None,
            "no holiday left"
        );
        assert!(parse_holidays("2026-13-01").unwrap_err().contains("Line 1"));
    }
}
