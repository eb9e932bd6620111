//! Process configuration: built-in defaults, then an optional `herald.toml`, then
//! `HERALD_*` environment variables. Settings that staff change at run time (brand,
//! sender, time zone…) live in the database instead, see [`crate::settings`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The effective process configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the web server listens on.
    pub bind: SocketAddr,
    /// `sqlite://…` or `postgres://…`. May carry a password, hence secret.
    pub database_url: Secret,
    /// Public URL of the admin UI, used in links and to decide the `Secure` cookie flag.
    pub base_url: url::Url,
    /// `smtp://`, `smtps://` or `smtp://…?tls=required`; none means the file outbox.
    pub smtp_url: Option<Secret>,
    /// A PEM file of certificate authorities to trust for the mail server, besides
    /// the system's.
    pub smtp_ca_file: Option<std::path::PathBuf>,
    /// Key for signing cookies; generated into `data_dir/secret_key` when unset.
    pub secret_key: Option<Secret>,
    /// Email of the admin created on the first start.
    pub admin_email: String,
    /// Folder for the SQLite file, the outbox and the generated secret key.
    pub data_dir: PathBuf,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Staff sessions end after this long without a request.
    pub session_idle_timeout: Duration,
    /// Staff sessions end this long after sign-in, whatever happens.
    pub session_absolute_timeout: Duration,
    /// Threads that hash passwords (each holds one 19 MiB argon2 block).
    pub hash_threads: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// `tracing` filter, e.g. `info` or `herald=debug,info`.
    pub log: String,
    /// logfmt (`text`) or one JSON object per line (`json`).
    pub log_format: crate::logging::LogFormat,
    /// Bearer token that `/metrics` requires; without one the endpoint is off (404).
    pub metrics_token: Option<Secret>,
    /// The longest any one SMTP step (connect, greeting, EHLO, STARTTLS, each
    /// command, the data) may take.
    pub smtp_timeout: Duration,
    /// The longest one attempt of a job may take; past it the attempt is abandoned
    /// and the run retried with backoff.
    pub job_timeout: Duration,
    /// Unknown keys found in the file or environment, reported once logging is up.
    pub warnings: Vec<String>,
}

/// A bad configuration value, naming the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key} = {value:?}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

struct Key {
    name: &'static str,
    default: &'static str,
    secret: bool,
}

const KEYS: &[Key] = &[
    Key {
        name: "bind",
        default: "127.0.0.1:8080",
        secret: false,
    },
    Key {
        name: "database_url",
        default: "",
        secret: true,
    },
    Key {
        name: "base_url",
        default: "",
        secret: false,
    },
    Key {
        name: "smtp_url",
        default: "",
        secret: true,
    },
    Key {
        name: "secret_key",
        default: "",
        secret: true,
    },
    Key {
        name: "admin_email",
        default: "admin@localhost",
        secret: false,
    },
    Key {
        name: "data_dir",
        default: "data",
        secret: false,
    },
    Key {
        name: "trusted_proxies",
        default: "",
        secret: false,
    },
    Key {
        name: "session_idle_timeout_minutes",
        default: "30",
        secret: false,
    },
    Key {
        name: "session_absolute_timeout_hours",
        default: "8",
        secret: false,
    },
    Key {
        name: "hash_threads",
        default: "0",
        secret: false,
    },
    Key {
        name: "workers",
        default: "0",
        secret: false,
    },
    Key {
        name: "smtp_ca_file",
        default: "",
        secret: false,
    },
    Key {
        name: "log",
        default: "info",
        secret: false,
    },
    Key {
        name: "log_format",
        default: "text",
        secret: false,
    },
    Key {
        name: "metrics_token",
        default: "",
        secret: true,
    },
    Key {
        name: "smtp_timeout_seconds",
        default: "15",
        secret: false,
    },
    Key {
        name: "job_timeout_seconds",
        default: "60",
        secret: false,
    },
];

/// Raw values by key, each remembering where it came from for error messages.
#[derive(Default)]
struct Layers {
    values: BTreeMap<&'static str, (String, String)>,
    warnings: Vec<String>,
}

impl Config {
    /// Loads defaults, then `herald.toml` (or the file named by `HERALD_CONFIG`) when
    /// present, then `HERALD_*` variables from `env`.
    pub fn load(env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let mut layers = Layers::default();
        for key in KEYS {
            layers
                .values
                .insert(key.name, (key.default.to_string(), key.name.to_string()));
        }
        let file = env
            .get("HERALD_CONFIG")
            .cloned()
            .unwrap_or_else(|| "herald.toml".to_string());
        let explicit = env.contains_key("HERALD_CONFIG");
        if Path::new(&file).exists() || explicit {
            layers.read_file(Path::new(&file))?;
        }
        for (name, value) in &env {
            let Some(rest) = name.strip_prefix("HERALD_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            match KEYS.iter().find(|k| k.name == lower) {
                Some(key) => {
                    layers
                        .values
                        .insert(key.name, (value.clone(), name.clone()));
                }
                None if rest == "CONFIG" || rest.starts_with("TEST_") => {}
                None => layers
                    .warnings
                    .push(format!("unknown environment variable {name} ignored")),
            }
        }
        layers.build()
    }

    /// Configuration for tests and embedding: the defaults, with nothing read from
    /// the file system or the environment.
    pub fn defaults() -> Self {
        Layers {
            values: KEYS
                .iter()
                .map(|k| (k.name, (k.default.to_string(), k.name.to_string())))
                .collect(),
            warnings: Vec::new(),
        }
        .build()
        .expect("built-in defaults are valid")
    }

    /// The effective settings as `key = value` lines, secrets redacted.
    pub fn describe(&self) -> String {
        let redacted = |s: &Option<Secret>| match s {
            Some(_) => "[redacted]".to_string(),
            None => "(not set)".to_string(),
        };
        let proxies: Vec<String> = self.trusted_proxies.iter().map(|p| p.to_string()).collect();
        [
            ("bind", self.bind.to_string()),
            ("database_url", redact_url(self.database_url.expose())),
            ("base_url", self.base_url.to_string()),
            (
                "smtp_url",
                self.smtp_url
                    .as_ref()
                    .map(|u| redact_url(u.expose()))
                    .unwrap_or_else(|| "(not set: emails go to the outbox folder)".into()),
            ),
            (
                "smtp_ca_file",
                self.smtp_ca_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(not set: the system's certificate authorities)".into()),
            ),
            ("secret_key", redacted(&self.secret_key)),
            ("admin_email", self.admin_email.clone()),
            ("data_dir", self.data_dir.display().to_string()),
            ("trusted_proxies", proxies.join(",")),
            (
                "session_idle_timeout_minutes",
                (self.session_idle_timeout.as_secs() / 60).to_string(),
            ),
            (
                "session_absolute_timeout_hours",
                (self.session_absolute_timeout.as_secs() / 3600).to_string(),
            ),
            ("hash_threads", self.hash_threads.to_string()),
            ("workers", self.workers.to_string()),
            ("log", self.log.clone()),
            (
                "log_format",
                match self.log_format {
                    crate::logging::LogFormat::Text => "text".to_string(),
                    crate::logging::LogFormat::Json => "json".to_string(),
                },
            ),
            ("metrics_token", redacted(&self.metrics_token)),
            (
                "smtp_timeout_seconds",
                self.smtp_timeout.as_secs().to_string(),
            ),
            (
                "job_timeout_seconds",
                self.job_timeout.as_secs().to_string(),
            ),
        ]
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect()
    }

    /// Whether cookies may travel over plain HTTP (local development only).
    pub fn is_https(&self) -> bool {
        self.base_url.scheme() == "https"
    }
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

/// A TOML value as the text an environment variable would hold.
fn scalar_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        // Tables and dates are never valid here; the key's parser says so.
        _ => "[unsupported value]".to_string(),
    }
}

impl Layers {
    fn read_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_err = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| file_err(e.to_string()))?;
        for (name, value) in table {
            let Some(key) = KEYS.iter().find(|k| k.name == name) else {
                self.warnings.push(format!(
                    "unknown key {name:?} in {} ignored",
                    path.display()
                ));
                continue;
            };
            let text = match &value {
                toml::Value::Array(items) => {
                    items.iter().map(scalar_text).collect::<Vec<_>>().join(",")
                }
                other => scalar_text(other),
            };
            let origin = format!("{name} in {}", path.display());
            self.values.insert(key.name, (text, origin));
        }
        Ok(())
    }

    fn get(&self, key: &str) -> (&str, &str) {
        let (value, origin) = &self.values[key];
        (value.trim(), origin.as_str())
    }

    fn parse<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let (value, origin) = self.get(key);
        parse(value).map_err(|reason| ConfigError::Invalid {
            key: origin.to_string(),
            value: if KEYS.iter().any(|k| k.name == key && k.secret) {
                "[redacted]".to_string()
            } else {
                value.to_string()
            },
            reason,
        })
    }

    fn build(self) -> Result<Config, ConfigError> {
        let bind: SocketAddr = self.parse("bind", |v| {
            v.parse()
                .map_err(|_| "expected an address and port such as 127.0.0.1:8080".into())
        })?;
        let data_dir = PathBuf::from(self.get("data_dir").0);
        let database_url = self.parse("database_url", |v| {
            if v.is_empty() {
                let file = data_dir.join("herald.db");
                return Ok(format!("sqlite://{}", file.display()));
            }
            if v.starts_with("sqlite:")
                || v.starts_with("postgres://")
                || v.starts_with("postgresql://")
            {
                Ok(v.to_string())
            } else {
                Err("expected a sqlite:// or postgres:// URL".into())
            }
        })?;
        let base_url = self.parse("base_url", |v| {
            let v = if v.is_empty() {
                format!("http://{bind}")
            } else {
                v.to_string()
            };
            let url = url::Url::parse(&v).map_err(|e| format!("not a URL ({e})"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err("expected an http:// or https:// URL".into());
            }
            Ok(url)
        })?;
        let smtp_url = self.parse("smtp_url", |v| {
            if v.is_empty() {
                return Ok(None);
            }
            crate::smtp_url::SmtpUrl::parse(v)?;
            Ok(Some(Secret::new(v)))
        })?;
        let smtp_ca_file = self.parse("smtp_ca_file", |v| {
            if v.is_empty() {
                return Ok(None);
            }
            let pem = std::fs::read_to_string(v).map_err(|e| format!("cannot be read ({e})"))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err("holds no PEM certificate".into());
            }
            Ok(Some(std::path::PathBuf::from(v)))
        })?;
        let secret_key = self.parse("secret_key", |v| match v.len() {
            0 => Ok(None),
            n if n < 32 => Err("must be at least 32 characters".into()),
            _ => Ok(Some(Secret::new(v))),
        })?;
        let admin_email = self.parse("admin_email", |v| {
            crate::types::EmailAddress::parse(v)
                .map(|e| e.as_str().to_string())
                .map_err(|e| e.to_string())
        })?;
        let trusted_proxies = self.parse("trusted_proxies", |v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpAddr>()
                        .map_err(|_| format!("{s:?} is not an IP address"))
                })
                .collect()
        })?;
        let minutes = |v: &str, max: u64| -> Result<u64, String> {
            match v.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!("expected a whole number from 1 to {max}")),
            }
        };
        let idle = self.parse("session_idle_timeout_minutes", |v| minutes(v, 24 * 60))?;
        let absolute = self.parse("session_absolute_timeout_hours", |v| minutes(v, 24 * 30))?;
        let count = |v: &str| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n <= 256)
                .ok_or_else(|| "expected a whole number from 0 (automatic) to 256".into())
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hash_threads = match self.parse("hash_threads", count)? {
            0 => cores,
            n => n,
        };
        let workers = self.parse("workers", count)?;
        let log = self.parse("log", |v| {
            tracing_subscriber::EnvFilter::try_new(v)
                .map(|_| v.to_string())
                .map_err(|e| format!("not a log filter ({e})"))
        })?;
        let log_format = self.parse("log_format", crate::logging::LogFormat::parse)?;
        let metrics_token = self.parse("metrics_token", |v| match v.len() {
            0 => Ok(None),
            n if n < 16 => Err("must be at least 16 characters".into()),
            _ => Ok(Some(Secret::new(v))),
        })?;
        let seconds = |v: &str, max: u64| -> Result<Duration, String> {
            match v.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(Duration::from_secs(n)),
                _ => Err(format!(
                    "expected a whole number of seconds from 1 to {max}"
                )),
            }
        };
        let smtp_timeout = self.parse("smtp_timeout_seconds", |v| seconds(v, 600))?;
        let job_timeout = self.parse("job_timeout_seconds", |v| seconds(v, 3600))?;
        Ok(Config {
            bind,
            database_url: Secret::new(database_url),
            base_url,
            smtp_url,
            smtp_ca_file,
            secret_key,
            admin_email,
            data_dir,
            trusted_proxies,
            session_idle_timeout: Duration::from_secs(idle * 60),
            session_absolute_timeout: Duration::from_secs(absolute * 3600),
            hash_threads,
            workers,
            log,
            log_format,
            metrics_token,
            smtp_timeout,
            job_timeout,
            warnings: self.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = Config::load(env(&[])).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url.expose(), "sqlite://data/herald.db");
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8080/");
        assert!(c.smtp_url.is_none());
        assert_eq!(c.admin_email, "admin@localhost");
    }

    #[test]
    fn environment_overrides_and_names_bad_values() {
        let c = Config::load(env(&[("HERALD_BIND", "0.0.0.0:9000")])).unwrap();
        assert_eq!(c.bind.port(), 9000);
        let err = Config::load(env(&[("HERALD_BIND", "nope")])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("HERALD_BIND") && text.contains("nope"),
            "{text}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let c = Config::load(env(&[
            (
                "HERALD_DATABASE_URL",
                "postgres://u:hunter2secret@db/herald",
            ),
            ("HERALD_SECRET_KEY", "k".repeat(40).as_str()),
            ("HERALD_SMTP_URL", "smtp://mailer:smtppass99@mail:25"),
        ]))
        .unwrap();
        for text in [format!("{c:?}"), c.describe()] {
            assert!(!text.contains("hunter2secret"), "{text}");
            assert!(!text.contains("smtppass99"), "{text}");
            assert!(!text.contains(&"k".repeat(40)), "{text}");
        }
        let err = Config::load(env(&[("HERALD_SECRET_KEY", "short-secret")])).unwrap_err();
        assert!(!err.to_string().contains("short-secret"));
    }

    #[test]
    fn unknown_variables_are_warned_about() {
        let c = Config::load(env(&[("HERALD_BINDD", "x")])).unwrap();
        assert!(c.warnings[0].contains("HERALD_BINDD"));
    }

    #[test]
    fn check_config_refuses_the_smtp_urls_serve_would() {
        // check-config and serve both go through Config::load and SmtpUrl::parse.
        let e =
            Config::load(env(&[("HERALD_SMTP_URL", "smtp://mail.example?tls=maybe")])).unwrap_err();
        assert!(e.to_string().contains("tls=maybe"), "{e}");
    }
}
