//! [`Config`]: each key is one field, with its default in `Default` and its check
//! and display in [`super::keys`]; `figment` layers the file and the environment.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

use super::{Secret, keys};

/// The effective process configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// Address the web server listens on.
    #[serde(with = "keys::address")]
    pub bind: SocketAddr,
    /// `sqlite://…` or `postgres://…`. May carry a password, hence secret. Unset:
    /// `herald.db` in `data_dir`.
    #[serde(with = "keys::database_url")]
    pub database_url: Secret,
    /// Public URL of the admin UI, used in links and to decide the `Secure` cookie
    /// flag. Unset: `http://` and `bind`.
    #[serde(with = "keys::base_url")]
    pub base_url: url::Url,
    /// `smtp://`, `smtps://` or `smtp://…?tls=required`; none means the file outbox.
    #[serde(with = "keys::smtp_url")]
    pub smtp_url: Option<Secret>,
    /// A PEM file of certificate authorities to trust for the mail server, besides
    /// the system's.
    #[serde(with = "keys::ca_file")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Key for signing cookies; generated into `data_dir/secret_key` when unset.
    #[serde(with = "keys::secret_key")]
    pub secret_key: Option<Secret>,
    /// Email of the admin created on the first start.
    #[serde(with = "keys::email")]
    pub admin_email: String,
    /// Folder for the SQLite file, the outbox and the generated secret key.
    #[serde(with = "keys::path")]
    pub data_dir: PathBuf,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    #[serde(with = "keys::addresses")]
    pub trusted_proxies: Vec<IpAddr>,
    /// Staff sessions end after this long without a request.
    #[serde(rename = "session_idle_timeout_minutes", with = "keys::idle_minutes")]
    pub session_idle_timeout: Duration,
    /// Staff sessions end this long after sign-in, whatever happens.
    #[serde(
        rename = "session_absolute_timeout_hours",
        with = "keys::absolute_hours"
    )]
    pub session_absolute_timeout: Duration,
    /// Threads that hash passwords (each holds one 19 MiB argon2 block); 0 means
    /// one per core.
    #[serde(with = "keys::hash_threads")]
    pub hash_threads: usize,
    /// HTTP worker threads; 0 means one per core.
    #[serde(with = "keys::count")]
    pub workers: usize,
    /// `tracing` filter, e.g. `info` or `herald=debug,info`.
    #[serde(with = "keys::log_filter")]
    pub log: String,
    /// logfmt (`text`) or one JSON object per line (`json`).
    #[serde(with = "keys::log_format")]
    pub log_format: crate::logging::LogFormat,
    /// Bearer token that `/metrics` requires; without one the endpoint is off (404).
    #[serde(with = "keys::metrics_token")]
    pub metrics_token: Option<Secret>,
    /// The longest any one SMTP step (connect, greeting, EHLO, STARTTLS, each
    /// command, the data) may take.
    #[serde(rename = "smtp_timeout_seconds", with = "keys::smtp_seconds")]
    pub smtp_timeout: Duration,
    /// The longest one attempt of a job may take; past it the attempt is abandoned
    /// and the run retried with backoff.
    #[serde(rename = "job_timeout_seconds", with = "keys::job_seconds")]
    pub job_timeout: Duration,
    /// Where Herald receives bounces and complaints over SMTP (behind the mail
    /// server that takes the bounce domain's mail); none: it does not.
    #[serde(with = "keys::optional_address")]
    pub inbound_smtp_bind: Option<SocketAddr>,
    /// A file of image proxy networks (one per line) whose opens are machines';
    /// none: the list Herald ships.
    #[serde(with = "keys::networks_file")]
    pub image_proxies_file: Option<PathBuf>,
    /// Unknown keys found in the file or environment, reported once logging is up.
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Tests only, never read from the file or the environment: an origin
    /// (`http://127.0.0.1:port`) taken as an Amazon SNS host, so a test serves
    /// its own signing certificate and nothing leaves the machine.
    #[serde(skip)]
    pub sns_test_origin: Option<url::Url>,
}

impl Default for Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: Secret::from("sqlite://data/herald.db"),
            base_url: url::Url::parse(keys::DEFAULT_BASE_URL).expect("a URL"),
            smtp_url: None,
            smtp_ca_file: None,
            secret_key: None,
            admin_email: "admin@localhost".into(),
            data_dir: PathBuf::from("data"),
            trusted_proxies: Vec::new(),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(8 * 3600),
            hash_threads: cores,
            workers: 0,
            log: "info".into(),
            log_format: crate::logging::LogFormat::Text,
            metrics_token: None,
            smtp_timeout: Duration::from_secs(15),
            job_timeout: Duration::from_secs(60),
            inbound_smtp_bind: None,
            image_proxies_file: None,
            warnings: Vec::new(),
            sns_test_origin: None,
        }
    }
}

/// A bad configuration value, naming the key (as the operator wrote it) and the
/// value (unless it is a secret).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key} = {detail}")]
    Invalid { key: String, detail: String },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

/// The name figment's errors carry for values from the environment.
const ENVIRONMENT: &str = "environment variable";

impl Config {
    /// Loads defaults, then `herald.toml` (or the file named by `HERALD_CONFIG`) when
    /// present, then `HERALD_*` variables from `env`.
    pub fn load(env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let known = Self::keys();
        let env: BTreeMap<String, String> = env.into_iter().collect();
        let mut warnings = Vec::new();
        let mut operator = Figment::new();
        let file = env.get("HERALD_CONFIG").map(PathBuf::from);
        let file = file.unwrap_or_else(|| PathBuf::from("herald.toml"));
        if file.exists() || env.contains_key("HERALD_CONFIG") {
            let toml = Toml::file_exact(&file);
            let keys = toml.data().map_err(|e| ConfigError::File {
                path: file.display().to_string(),
                reason: e.kind.to_string(),
            })?;
            for key in keys.values().flat_map(|dict| dict.keys()) {
                if !known.contains(key) {
                    warnings.push(format!("unknown key {key:?} in {} ignored", file.display()));
                }
            }
            operator = operator.merge(toml);
        }
        let mut variables = Dict::new();
        for (name, value) in &env {
            let Some(rest) = name.strip_prefix("HERALD_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            if known.contains(&key) {
                variables.insert(key, Value::from(value.clone()));
            } else if rest != "CONFIG" && !rest.starts_with("TEST_") {
                warnings.push(format!("unknown environment variable {name} ignored"));
            }
        }
        let operator = operator.merge(Environment(variables));
        // Keys nobody set take `Config::default()` (`#[serde(default)]`).
        let mut config: Config = operator
            .extract()
            .map_err(|e| ConfigError::from_figment(e, &file))?;
        // Two defaults follow other keys: the database lives in `data_dir`, and the
        // public URL is the listening address.
        let unset = |key| {
            operator
                .find_value(key)
                .map_or(true, |v| v.as_str() == Some(""))
        };
        if unset("database_url") {
            let path = config.data_dir.join("herald.db");
            config.database_url = Secret::from(format!("sqlite://{}", path.display()));
        }
        if unset("base_url") {
            config.base_url = url::Url::parse(&format!("http://{}", config.bind)).map_err(|e| {
                ConfigError::Invalid {
                    key: "bind".into(),
                    detail: format!("{}: not usable in a URL ({e})", config.bind),
                }
            })?;
        }
        config.warnings = warnings;
        Ok(config)
    }

    /// Configuration for tests and embedding: the defaults, with nothing read from
    /// the file system or the environment.
    pub fn defaults() -> Self {
        Self::default()
    }

    /// Every key, as written in `herald.toml` (and, upper-cased after `HERALD_`, in
    /// the environment).
    fn keys() -> Vec<String> {
        match Value::serialize(Config::default()) {
            Ok(Value::Dict(_, dict)) => dict.into_keys().collect(),
            _ => unreachable!("Config serializes to a table"),
        }
    }

    /// The effective settings as `key = value` lines, secrets redacted.
    pub fn describe(&self) -> String {
        let Ok(Value::Dict(_, dict)) = Value::serialize(self) else {
            unreachable!("Config serializes to a table")
        };
        // `keys` shows every value as text.
        dict.iter()
            .map(|(key, value)| format!("{key} = {}\n", value.as_str().unwrap_or("?")))
            .collect()
    }

    /// Whether cookies may travel over plain HTTP (local development only).
    pub fn is_https(&self) -> bool {
        self.base_url.scheme() == "https"
    }
}

impl ConfigError {
    /// The first of figment's errors, naming the key as the operator wrote it:
    /// `HERALD_BIND`, or `bind in herald.toml`.
    fn from_figment(error: figment::Error, file: &Path) -> Self {
        let key = error.path.join(".");
        let origin = match &error.metadata {
            Some(m) if m.name == ENVIRONMENT => m.interpolate(&Profile::Default, &error.path),
            Some(m) if matches!(m.source, Some(figment::Source::File(_))) => {
                format!("{key} in {}", file.display())
            }
            _ => key,
        };
        let detail = match &error.kind {
            figment::error::Kind::Message(message) => message.clone(),
            other => other.to_string(),
        };
        Self::Invalid {
            key: origin,
            detail,
        }
    }
}

/// The `HERALD_*` variables that name a key, as text (figment's own `Env` would
/// guess types: a numeric secret would become a number).
struct Environment(Dict);

impl Provider for Environment {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENVIRONMENT).interpolater(|_: &Profile, keys: &[&str]| {
            format!("HERALD_{}", keys.join("_").to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}
