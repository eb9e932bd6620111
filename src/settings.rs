//! Settings that admins change at run time, stored in the database (SPEC §5.13).
//! Every instance reads the same values; missing keys fall back to defaults.

use std::collections::HashMap;

use crate::db::Db;
use crate::types::{EmailAddress, Invalid};

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
        }
    }
}

/// The settings form as typed, before parsing.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SettingsForm {
    pub brand_name: String,
    pub sender_name: String,
    pub sender_address: String,
    pub preference_center_url: String,
    pub default_time_zone: String,
    pub temp_password_lifetime_hours: String,
    #[serde(default)]
    pub holidays: String,
    #[serde(default)]
    pub self_signup: Option<String>,
    #[serde(default)]
    pub password_length: String,
    #[serde(default)]
    pub password_emails_per_hour: String,
    #[serde(default)]
    pub stale_after_hours: String,
    #[serde(default)]
    pub contact_password_min: String,
    #[serde(default)]
    pub run_retention_days: String,
    #[serde(default)]
    pub event_retention_days: String,
    #[serde(default)]
    pub audit_retention_days: String,
}

impl From<&Settings> for SettingsForm {
    fn from(s: &Settings) -> Self {
        Self {
            brand_name: s.brand_name.clone(),
            sender_name: s.sender_name.clone(),
            sender_address: s.sender_address.clone(),
            preference_center_url: s.preference_center_url.clone(),
            default_time_zone: s.default_time_zone.clone(),
            temp_password_lifetime_hours: s.temp_password_lifetime_hours.to_string(),
            holidays: s.holidays.clone(),
            self_signup: s.self_signup.then(|| "on".to_string()),
            password_length: s.password_length.to_string(),
            password_emails_per_hour: s.password_emails_per_hour.to_string(),
            stale_after_hours: s.stale_after_hours.to_string(),
            contact_password_min: s.contact_password_min.to_string(),
            run_retention_days: s.run_retention_days.to_string(),
            event_retention_days: s.event_retention_days.to_string(),
            audit_retention_days: s.audit_retention_days.to_string(),
        }
    }
}

/// Field name → message, for the form.
pub type FieldErrors = std::collections::BTreeMap<&'static str, String>;

fn short_text(raw: &str, what: &str, max: usize) -> Result<String, Invalid> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Invalid::new(format!("Enter the {what}.")));
    }
    if s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(Invalid::new(format!(
            "The {what} has at most {max} characters and no control characters."
        )));
    }
    Ok(s.to_string())
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

impl SettingsForm {
    /// Parses every field, collecting a message per bad field.
    pub fn parse(&self) -> Result<Settings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut check = |field: &'static str, r: Result<String, Invalid>| match r {
            Ok(v) => v,
            Err(e) => {
                errors.insert(field, e.0);
                String::new()
            }
        };
        let brand_name = check(
            "brand_name",
            short_text(&self.brand_name, "brand name", 100),
        );
        let sender_name = check(
            "sender_name",
            short_text(&self.sender_name, "sender name", 100),
        );
        let sender_address = check(
            "sender_address",
            EmailAddress::parse(&self.sender_address).map(|e| e.to_string()),
        );
        let preference_center_url = check("preference_center_url", {
            let s = self.preference_center_url.trim();
            if s.is_empty() {
                Ok(String::new())
            } else {
                match url::Url::parse(s) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                        Ok(s.to_string())
                    }
                    _ => Err(Invalid::new(
                        "Enter an address starting with https:// (or http:// for local tests).",
                    )),
                }
            }
        });
        let default_time_zone = check(
            "default_time_zone",
            parse_time_zone(&self.default_time_zone),
        );
        let hours = check(
            "temp_password_lifetime_hours",
            match self.temp_password_lifetime_hours.trim().parse::<i64>() {
                Ok(n) if (1..=720).contains(&n) => Ok(n.to_string()),
                _ => Err(Invalid::new("Enter a whole number of hours from 1 to 720.")),
            },
        );
        let holidays = check(
            "holidays",
            crate::automations::time_frame::parse_holidays(&self.holidays)
                .map(|_| {
                    self.holidays
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .map_err(Invalid::new),
        );
        let mut number = |field: &'static str, raw: &str, min: i64, max: i64, unit: &str| match raw
            .trim()
            .parse::<i64>()
        {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                errors.insert(
                    field,
                    format!("Enter a whole number of {unit} from {min} to {max}."),
                );
                min
            }
        };
        let password_length = number(
            "password_length",
            &self.password_length,
            12,
            64,
            "characters",
        );
        let password_emails_per_hour = number(
            "password_emails_per_hour",
            &self.password_emails_per_hour,
            1,
            100,
            "emails",
        );
        let stale_after_hours = number(
            "stale_after_hours",
            &self.stale_after_hours,
            1,
            720,
            "hours",
        );
        let contact_password_min = number(
            "contact_password_min",
            &self.contact_password_min,
            12,
            128,
            "characters",
        );
        let run_retention_days = number(
            "run_retention_days",
            &self.run_retention_days,
            1,
            3650,
            "days",
        );
        let event_retention_days = number(
            "event_retention_days",
            &self.event_retention_days,
            1,
            3650,
            "days",
        );
        let audit_retention_days = number(
            "audit_retention_days",
            &self.audit_retention_days,
            1,
            3650,
            "days",
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            run_retention_days,
            event_retention_days,
            audit_retention_days,
            password_length,
            password_emails_per_hour,
            stale_after_hours,
            contact_password_min,
            brand_name,
            sender_name,
            sender_address,
            preference_center_url,
            default_time_zone,
            temp_password_lifetime_hours: hours.parse().unwrap_or(24),
            holidays,
            self_signup: self.self_signup.is_some(),
        })
    }
}

impl Settings {
    fn pairs(&self) -> [(&'static str, String); 15] {
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
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_each_bad_field() {
        let form = SettingsForm {
            brand_name: " ".into(),
            sender_name: "Acme".into(),
            sender_address: "not-an-address".into(),
            preference_center_url: "ftp://x".into(),
            default_time_zone: "Mars/Olympus".into(),
            temp_password_lifetime_hours: "0".into(),
            holidays: "2026-12-25\nnot a date".into(),
            self_signup: None,
            password_length: "8".into(),
            password_emails_per_hour: "3".into(),
            stale_after_hours: "24".into(),
            contact_password_min: "12".into(),
            run_retention_days: "90".into(),
            event_retention_days: "90".into(),
            audit_retention_days: "365".into(),
        };
        let errors = form.parse().unwrap_err();
        let keys: Vec<_> = errors.keys().copied().collect();
        assert_eq!(
            keys,
            [
                "brand_name",
                "default_time_zone",
                "holidays",
                "password_length",
                "preference_center_url",
                "sender_address",
                "temp_password_lifetime_hours"
            ]
        );
    }

    #[test]
    fn a_good_form_parses() {
        let mut form = SettingsForm::from(&Settings::default());
        form.default_time_zone = "Europe/Berlin".into();
        form.preference_center_url = "https://prefs.example.com/preferences".into();
        let s = form.parse().unwrap();
        assert_eq!(s.default_time_zone, "Europe/Berlin");
    }
}
