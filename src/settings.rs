//! Settings that admins change at run time, stored in the database (the Settings page).
//! Every instance reads the same values; missing keys fall back to defaults.

use std::collections::{BTreeSet, HashMap};

use crate::db::Db;
use crate::types::Invalid;

/// The settings later features read (brand in emails, links, time zones…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub brand_name: String,
    pub sender_name: String,
    pub sender_address: String,
    pub preference_center_url: String,
    pub default_time_zone: String,
    pub temp_password_lifetime_hours: i64,
    /// The holiday calendar: one `YYYY-MM-DD` per line, optionally with a name.
    pub holidays: String,
    /// Whether people may sign themselves up in the preference center.
    pub self_signup: bool,
    /// Length of the passwords the jobs email (12–64).
    pub password_length: i64,
    /// Password emails per target per hour before runs are skipped.
    pub password_emails_per_hour: i64,
    /// A password run that cannot start this long after its due time expires.
    pub stale_after_hours: i64,
    /// The shortest password a contact may choose.
    pub contact_password_min: i64,
    /// Finished runs are deleted this many days after they finished.
    pub run_retention_days: i64,
    /// Events are deleted this many days after they happened, unless a kept run
    /// still refers to them.
    pub event_retention_days: i64,
    /// Audit entries are deleted this many days after they were written.
    pub audit_retention_days: i64,
    /// Prepared messages per contact in 24 hours before further runs are skipped.
    pub messages_per_day: i64,
    /// Calls per API key per minute before 429.
    pub api_calls_per_minute: i64,
    /// Hosts Send HTTP Request may reach although they are on a private network
    /// (or loopback), or over plain http: one per line.
    pub webhook_hosts: String,
    /// The domain of the bounce addresses (VERP), e.g. `bounce.example.com`;
    /// empty: the envelope sender is the sender address.
    pub bounce_domain: String,
    /// Soft bounces of an address, without a delivery between them, that
    /// suppress it…
    pub soft_bounce_limit: i64,
    /// …within this many days.
    pub soft_bounce_days: i64,
    /// Whether opens and clicks of prepared messages are tracked, and how.
    pub tracking: Tracking,
    /// Each open and click is deleted this many days after it came (the counts
    /// per message, automation and link stay).
    pub engagement_retention_days: i64,
    /// How long a double opt-in confirmation link works (days).
    pub confirmation_lifetime_days: i64,
}

/// How opens and clicks are tracked (Settings → Track opens and clicks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tracking {
    /// Each open and click is kept with the email and the contact, and fires events.
    #[default]
    PerContact,
    /// Counted per message and link only; never kept with the email or the
    /// contact; no events.
    Anonymous,
    /// Links are sent as they are; no image.
    Off,
}

impl Tracking {
    pub const ALL: [Tracking; 3] = [Tracking::PerContact, Tracking::Anonymous, Tracking::Off];

    pub fn code(self) -> &'static str {
        match self {
            Tracking::PerContact => "per_contact",
            Tracking::Anonymous => "anonymous",
            Tracking::Off => "off",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Tracking::PerContact => "Per contact: who opened and clicked what",
            Tracking::Anonymous => "Anonymous: counts per message and link only",
            Tracking::Off => "Off: links as written, no image",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            brand_name: "Herald".into(),
            sender_name: "Herald".into(),
            sender_address: "herald@localhost".into(),
            preference_center_url: String::new(),
            default_time_zone: "UTC".into(),
            temp_password_lifetime_hours: 24,
            holidays: String::new(),
            self_signup: false,
            password_length: 16,
            password_emails_per_hour: 3,
            stale_after_hours: 24,
            contact_password_min: 12,
            run_retention_days: 90,
            event_retention_days: 90,
            audit_retention_days: 365,
            messages_per_day: 5,
            api_calls_per_minute: 6000,
            webhook_hosts: String::new(),
            bounce_domain: String::new(),
            soft_bounce_limit: 3,
            soft_bounce_days: 7,
            tracking: Tracking::PerContact,
            engagement_retention_days: 180,
            confirmation_lifetime_days: 7,
        }
    }
}

/// Checks an IANA time-zone name against the zone database.
pub fn parse_time_zone(raw: &str) -> Result<String, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Invalid::new("Choose a time zone."));
    }
    jiff::tz::TimeZone::get(s)
        .map(|_| s.to_string())
        .map_err(|_| {
            Invalid::new(format!(
                "{s:?} is not a time zone name such as Europe/Berlin."
            ))
        })
}

/// The most hosts the webhook allow list holds.
pub const MAX_WEBHOOK_HOSTS: usize = 50;

/// Checks the hosts Send HTTP Request may reach on a private network or over
/// http: host names or IP addresses, one per line (or separated by commas or
/// spaces), without scheme, port or path. Returns them one per line, lower case.
pub fn parse_webhook_hosts(raw: &str) -> Result<String, Invalid> {
    let mut hosts: Vec<String> = Vec::new();
    for entry in raw
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|e| !e.is_empty())
    {
        let host = entry.trim_start_matches('[').trim_end_matches(']');
        match url::Host::parse(host) {
            Ok(url::Host::Domain(d)) if !d.contains(['/', ':', '@', '?', '#']) => {
                hosts.push(d.to_ascii_lowercase())
            }
            Ok(url::Host::Ipv4(ip)) => hosts.push(ip.to_string()),
            Ok(url::Host::Ipv6(ip)) => hosts.push(ip.to_string()),
            _ => {
                return Err(Invalid::new(format!(
                    "{entry:?} is not a host name or IP address (write it without http:// or a port)."
                )));
            }
        }
    }
    hosts.sort();
    hosts.dedup();
    if hosts.len() > MAX_WEBHOOK_HOSTS {
        return Err(Invalid::new(format!(
            "List at most {MAX_WEBHOOK_HOSTS} hosts."
        )));
    }
    Ok(hosts.join("\n"))
}

/// Checks the bounce address domain: empty (no bounce addresses), or a host name
/// such as `bounce.example.com`, returned in lower case.
pub fn parse_bounce_domain(raw: &str) -> Result<String, Invalid> {
    let s = raw.trim().trim_end_matches('.');
    if s.is_empty() {
        return Ok(String::new());
    }
    let bad = || {
        Invalid::new(format!(
            "{s:?} is not a domain name such as bounce.example.com."
        ))
    };
    match url::Host::parse(s) {
        Ok(url::Host::Domain(d))
            if d.contains('.')
                && d.len() <= 200
                && d.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }) =>
        {
            Ok(d.to_ascii_lowercase())
        }
        _ => Err(bad()),
    }
}

impl Settings {
    /// The bounce address domain, when one is set.
    pub fn bounce_domain(&self) -> Option<&str> {
        (!self.bounce_domain.is_empty()).then_some(self.bounce_domain.as_str())
    }

    /// The hosts an admin allowed for Send HTTP Request.
    pub fn webhook_hosts(&self) -> Vec<String> {
        self.webhook_hosts.lines().map(str::to_string).collect()
    }
}

/// What a time-zone select offers: the default (and a legacy name already
/// stored) first, then the canonical IANA names by region — no aliases such as
/// `US/Eastern` or `Asia/Calcutta`, nor `Factory`, `posixrules` or `localtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneChoices {
    pub first: Vec<String>,
    pub regions: Vec<(String, Vec<String>)>,
}

/// [`ZoneChoices`] with `default` first, and `current` too when it is not a
/// canonical name (a legacy name already stored keeps being shown).
pub fn zone_choices(default: &str, current: &str) -> ZoneChoices {
    let canonical = std::iter::once("UTC").chain(
        include_str!("time_zones.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty()),
    );
    let known = |z: &str| jiff::tz::TimeZone::get(z).is_ok();
    let mut first: Vec<String> = Vec::new();
    for z in [default, current] {
        if !z.is_empty() && known(z) && !first.iter().any(|f| f == z) {
            first.push(z.to_string());
        }
    }
    let mut regions: Vec<(String, Vec<String>)> = Vec::new();
    for z in canonical.filter(|z| known(z) && !first.iter().any(|f| f == z)) {
        let region = z.split_once('/').map_or("Other", |(r, _)| r).to_string();
        match regions.last_mut() {
            Some((r, names)) if *r == region => names.push(z.to_string()),
            _ => regions.push((region, vec![z.to_string()])),
        }
    }
    regions.sort_by(|a, b| a.0.cmp(&b.0));
    ZoneChoices { first, regions }
}

impl Settings {
    fn pairs(&self) -> [(&'static str, String); 24] {
        [
            ("brand_name", self.brand_name.clone()),
            ("sender_name", self.sender_name.clone()),
            ("sender_address", self.sender_address.clone()),
            ("preference_center_url", self.preference_center_url.clone()),
            ("default_time_zone", self.default_time_zone.clone()),
            (
                "temp_password_lifetime_hours",
                self.temp_password_lifetime_hours.to_string(),
            ),
            ("holidays", self.holidays.clone()),
            ("self_signup", self.self_signup.to_string()),
            ("password_length", self.password_length.to_string()),
            (
                "password_emails_per_hour",
                self.password_emails_per_hour.to_string(),
            ),
            ("stale_after_hours", self.stale_after_hours.to_string()),
            (
                "contact_password_min",
                self.contact_password_min.to_string(),
            ),
            ("run_retention_days", self.run_retention_days.to_string()),
            (
                "event_retention_days",
                self.event_retention_days.to_string(),
            ),
            (
                "audit_retention_days",
                self.audit_retention_days.to_string(),
            ),
            ("messages_per_day", self.messages_per_day.to_string()),
            (
                "api_calls_per_minute",
                self.api_calls_per_minute.to_string(),
            ),
            ("webhook_hosts", self.webhook_hosts.clone()),
            ("bounce_domain", self.bounce_domain.clone()),
            ("soft_bounce_limit", self.soft_bounce_limit.to_string()),
            ("soft_bounce_days", self.soft_bounce_days.to_string()),
            ("tracking", self.tracking.code().to_string()),
            (
                "engagement_retention_days",
                self.engagement_retention_days.to_string(),
            ),
            (
                "confirmation_lifetime_days",
                self.confirmation_lifetime_days.to_string(),
            ),
        ]
    }

    /// The stored settings, defaults where a key was never saved.
    pub async fn load(db: &Db) -> Result<Self, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM settings")
            .fetch_all(db.read())
            .await?;
        let map: HashMap<String, String> = rows.into_iter().collect();
        let d = Settings::default();
        let text = |k: &str, d: String| map.get(k).cloned().unwrap_or(d);
        let int = |k: &str, d: i64| map.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Ok(Settings {
            brand_name: text("brand_name", d.brand_name),
            sender_name: text("sender_name", d.sender_name),
            sender_address: text("sender_address", d.sender_address),
            preference_center_url: text("preference_center_url", d.preference_center_url),
            default_time_zone: text("default_time_zone", d.default_time_zone),
            temp_password_lifetime_hours: map
                .get("temp_password_lifetime_hours")
                .and_then(|v| v.parse().ok())
                .unwrap_or(d.temp_password_lifetime_hours),
            holidays: text("holidays", d.holidays),
            self_signup: map.get("self_signup").is_some_and(|v| v == "true"),
            password_length: int("password_length", d.password_length),
            password_emails_per_hour: int("password_emails_per_hour", d.password_emails_per_hour),
            stale_after_hours: int("stale_after_hours", d.stale_after_hours),
            contact_password_min: int("contact_password_min", d.contact_password_min),
            run_retention_days: int("run_retention_days", d.run_retention_days),
            event_retention_days: int("event_retention_days", d.event_retention_days),
            audit_retention_days: int("audit_retention_days", d.audit_retention_days),
            messages_per_day: int("messages_per_day", d.messages_per_day),
            api_calls_per_minute: int("api_calls_per_minute", d.api_calls_per_minute),
            webhook_hosts: text("webhook_hosts", d.webhook_hosts),
            bounce_domain: text("bounce_domain", d.bounce_domain),
            soft_bounce_limit: int("soft_bounce_limit", d.soft_bounce_limit),
            soft_bounce_days: int("soft_bounce_days", d.soft_bounce_days),
            tracking: map
                .get("tracking")
                .and_then(|v| Tracking::from_code(v))
                .unwrap_or(d.tracking),
            engagement_retention_days: int(
                "engagement_retention_days",
                d.engagement_retention_days,
            ),
            confirmation_lifetime_days: int(
                "confirmation_lifetime_days",
                d.confirmation_lifetime_days,
            ),
        })
    }

    /// Stores every setting; returns the names of those that changed.
    pub async fn save(
        &self,
        tx: &mut crate::db::Tx,
        now_ms: i64,
    ) -> Result<Vec<&'static str>, sqlx::Error> {
        let before: HashMap<String, String> = sqlx::query_as("SELECT key, value FROM settings")
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        let defaults = Settings::default().pairs();
        let mut changed = Vec::new();
        for ((key, value), (_, default)) in self.pairs().into_iter().zip(defaults) {
            let old = before.get(key).unwrap_or(&default);
            if *old != value {
                changed.push(key);
            }
            sqlx::query(
                "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(value)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        }
        SAVED.bump();
        Ok(changed)
    }
}

/// Bumped when this process saves the settings (see [`crate::cache`]).
pub static SAVED: crate::cache::Generation = crate::cache::Generation::new();

/// The settings for hot paths (every API call's rate limit, every run): read at
/// most once a second, and again at once after this process saved them.
pub struct Cached(crate::cache::Recent<(), Settings>);

impl Default for Cached {
    fn default() -> Self {
        Self(crate::cache::Recent::new(&SAVED))
    }
}

impl Cached {
    /// The settings as stored now — or up to a second ago when another instance
    /// saved them.
    pub async fn load(&self, db: &Db) -> Result<Settings, sqlx::Error> {
        self.0
            .get_or_load((), async || Settings::load(db).await)
            .await
    }
}

/// Parses the holiday calendar: one `YYYY-MM-DD` per line; text after the date is
/// a comment ("2026-12-25 Christmas").
pub fn parse_holidays(text: &str) -> Result<BTreeSet<jiff::civil::Date>, String> {
    let mut dates = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or("");
        let date: jiff::civil::Date = first
            .parse()
            .map_err(|_| format!("Line {}: {first:?} is not a date like 2026-12-25.", i + 1))?;
        dates.insert(date);
    }
    Ok(dates)
}

/// The holiday calendar's dates, read on `conn` (inside the caller's transaction).
pub async fn holiday_dates(
    conn: &mut sqlx::AnyConnection,
) -> Result<BTreeSet<jiff::civil::Date>, sqlx::Error> {
    let text: Option<String> =
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'holidays'")
            .fetch_optional(conn)
            .await?;
    Ok(text
        .as_deref()
        .map(parse_holidays)
        .and_then(Result::ok)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_choices_are_canonical_names_by_region_with_the_default_first() {
        let z = zone_choices("Europe/Berlin", "");
        assert_eq!(z.first, ["Europe/Berlin"]);
        let all: Vec<&String> = z.regions.iter().flat_map(|(_, names)| names).collect();
        for alias in [
            "US/Eastern",
            "GB",
            "Asia/Calcutta",
            "Factory",
            "posixrules",
            "localtime",
            "Europe/Berlin",
        ] {
            assert!(!all.iter().any(|n| *n == alias), "{alias} offered");
        }
        for canonical in ["UTC", "Asia/Kolkata", "America/New_York", "Europe/London"] {
            assert!(all.iter().any(|n| *n == canonical), "{canonical} missing");
        }
        let regions: Vec<&str> = z.regions.iter().map(|(r, _)| r.as_str()).collect();
        assert!(
            regions.contains(&"Europe") && regions.contains(&"America"),
            "{regions:?}"
        );
        // A legacy name already stored is still shown (and selectable).
        assert_eq!(
            zone_choices("UTC", "Asia/Calcutta").first,
            ["UTC", "Asia/Calcutta"]
        );
    }
}
