//! Each key's check and how `check-config` shows it: one module per kind of value,
//! used by [`super::Config`]'s fields as `#[serde(with = "keys::…")]`. A value is
//! read as text (from TOML or the environment alike), trimmed, then parsed; a
//! refusal names the value, or `[redacted]` for a secret.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use figment::value::Value;
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serializer, de::Error};

use super::Secret;

/// How a `database_url` starts.
const DATABASES: [&str; 3] = ["sqlite:", "postgres://", "postgresql://"];

/// The public URL when `base_url` is not set and `bind` is the default.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080/";

/// A value as the text an environment variable would hold; a list as its items
/// joined by commas.
fn text(value: &Value) -> String {
    match value {
        Value::String(_, s) => s.clone(),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n.to_i128().map_or_else(
            || n.to_f64().unwrap_or_default().to_string(),
            |i| i.to_string(),
        ),
        Value::Array(_, items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => format!("[{}]", other.to_actual()),
    }
}

/// `read(deserializer)`: the value's text through `parse`, refused with the value
/// shown unless `secret`.
fn read<'de, D: Deserializer<'de>, T>(
    d: D,
    secret: bool,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    let raw = text(&<Value as Deserialize>::deserialize(d)?);
    let value = raw.trim();
    parse(value).map_err(|reason| match secret {
        true => D::Error::custom(format!("[redacted]: {reason}")),
        false => D::Error::custom(format!("{value:?}: {reason}")),
    })
}

/// Declares `mod name { deserialize, serialize }` for `#[serde(with = …)]`.
macro_rules! keys {
    ($($name:ident: $t:ty, secret: $secret:literal, read: $parse:expr, show: $show:expr;)*) => {$(
        pub mod $name {
            use super::*;
            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                read(d, $secret, $parse)
            }
            pub fn serialize<S: Serializer>(value: &$t, s: S) -> Result<S::Ok, S::Error> {
                let show: fn(&$t) -> String = $show;
                s.serialize_str(&show(value))
            }
        }
    )*};
}

keys! {
    address: SocketAddr, secret: false,
        read: |v| v.parse()
            .map_err(|_| "expected an address and port such as 127.0.0.1:8080".into()),
        show: |v| v.to_string();
    optional_address: Option<SocketAddr>, secret: false,
        read: |v| match v {
            "" => Ok(None),
            v => v.parse().map(Some)
                .map_err(|_| "expected an address and port such as 127.0.0.1:2525".into()),
        },
        show: |v| match v {
            Some(a) => a.to_string(),
            None => "(not set: bounces and complaints are not received)".into(),
        };
    database_url: Secret, secret: true,
        read: |v| match v.is_empty() || DATABASES.iter().any(|p| v.starts_with(p)) {
            true => Ok(Secret::from(v)),
            false => Err("expected a sqlite:// or postgres:// URL".into()),
        },
        show: |v| redact_url(v.expose_secret());
    // Empty follows `bind`: `Config::load` fills it in.
    base_url: url::Url, secret: false,
        read: |v| url::Url::parse(if v.is_empty() { DEFAULT_BASE_URL } else { v })
            .map_err(|e| format!("not a URL ({e})"))
            .and_then(|url| match url.scheme() {
                "http" | "https" if url.host().is_some() => Ok(url),
                _ => Err("expected an http:// or https:// URL".into()),
            }),
        show: |v| v.to_string();
    // SmtpUrl's refusals never repeat a password.
    smtp_url: Option<Secret>, secret: true,
        read: |v| match v {
            "" => Ok(None),
            v => crate::smtp_url::SmtpUrl::parse(v).map(|_| Some(Secret::from(v))),
        },
        show: |v| match v {
            Some(url) => redact_url(url.expose_secret()),
            None => "(not set: emails go to the outbox folder)".into(),
        };
    ca_file: Option<PathBuf>, secret: false,
        read: |v| match v {
            "" => Ok(None),
            v => match std::fs::read_to_string(v) {
                Err(e) => Err(format!("cannot be read ({e})")),
                Ok(pem) if !pem.contains("-----BEGIN CERTIFICATE-----") => {
                    Err("holds no PEM certificate".into())
                }
                Ok(_) => Ok(Some(PathBuf::from(v))),
            },
        },
        show: |v| match v {
            Some(path) => path.display().to_string(),
            None => "(not set: the system's certificate authorities)".into(),
        };
    networks_file: Option<PathBuf>, secret: false,
        read: |v| match v {
            "" => Ok(None),
            v => match std::fs::read_to_string(v) {
                Err(e) => Err(format!("cannot be read ({e})")),
                Ok(text) => crate::networks::Networks::parse(&text)
                    .map(|_| Some(PathBuf::from(v))),
            },
        },
        show: |v| match v {
            Some(path) => path.display().to_string(),
            None => "(not set: the list Herald ships)".into(),
        };
    secret_key: Option<Secret>, secret: true, read: |v| optional_secret(v, 32), show: redacted;
    metrics_token: Option<Secret>, secret: true, read: |v| optional_secret(v, 16), show: redacted;
    email: String, secret: false,
        read: |v| crate::types::EmailAddress::parse(v)
            .map(|e| e.as_str().to_string())
            .map_err(|e| e.to_string()),
        show: String::clone;
    path: PathBuf, secret: false, read: |v| Ok(PathBuf::from(v)), show: |v| v.display().to_string();
    addresses: Vec<IpAddr>, secret: false,
        read: |v| v.split(',').map(str::trim).filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|_| format!("{s:?} is not an IP address")))
            .collect(),
        show: |v| v.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(",");
    idle_minutes: Duration, secret: false,
        read: |v| whole(v, 24 * 60, "").map(|n| Duration::from_secs(n * 60)),
        show: |v| (v.as_secs() / 60).to_string();
    absolute_hours: Duration, secret: false,
        read: |v| whole(v, 24 * 30, "").map(|n| Duration::from_secs(n * 3600)),
        show: |v| (v.as_secs() / 3600).to_string();
    smtp_seconds: Duration, secret: false,
        read: |v| whole(v, 600, " of seconds").map(Duration::from_secs),
        show: |v| v.as_secs().to_string();
    job_seconds: Duration, secret: false,
        read: |v| whole(v, 3600, " of seconds").map(Duration::from_secs),
        show: |v| v.as_secs().to_string();
    count: usize, secret: false, read: up_to_256, show: usize::to_string;
    hash_threads: usize, secret: false,
        read: |v| match up_to_256(v)? {
            0 => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
            n => Ok(n),
        },
        show: usize::to_string;
    log_filter: String, secret: false,
        read: |v| tracing_subscriber::EnvFilter::try_new(v)
            .map(|_| v.to_string())
            .map_err(|e| format!("not a log filter ({e})")),
        show: String::clone;
    log_format: crate::logging::LogFormat, secret: false,
        read: crate::logging::LogFormat::parse,
        show: |v| v.to_string();
}

fn whole(v: &str, max: u64, unit: &str) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number{unit} from 1 to {max}")),
    }
}

/// A secret of at least `min` characters, or none when empty.
fn optional_secret(v: &str, min: usize) -> Result<Option<Secret>, String> {
    match v.len() {
        0 => Ok(None),
        n if n < min => Err(format!("must be at least {min} characters")),
        _ => Ok(Some(Secret::from(v))),
    }
}

fn redacted(v: &Option<Secret>) -> String {
    v.as_ref().map_or("(not set)", |_| "[redacted]").into()
}

fn up_to_256(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n <= 256)
        .ok_or_else(|| "expected a whole number from 0 (automatic) to 256".into())
}

/// Shows a URL without its password, e.g. `postgres://herald:[redacted]@db/herald`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) if url.password().is_some() => {
            let password = url.password().unwrap_or_default();
            raw.replacen(&format!(":{password}@"), ":[redacted]@", 1)
        }
        Ok(url) => url.to_string(),
        Err(_) => "[unparseable, redacted]".to_string(),
    }
}
