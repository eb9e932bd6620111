//! The process configuration: defaults, `herald.toml`, `HERALD_*` variables, in
//! that order; bad values named; secrets never shown.

use std::time::Duration;

use herald::config::{Config, ExposeSecret};

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
    assert_eq!(c.database_url.expose_secret(), "sqlite://data/herald.db");
    assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8080/");
    assert!(c.smtp_url.is_none());
    assert_eq!(c.admin_email, "admin@localhost");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn environment_overrides_and_names_bad_values() {
    let c = Config::load(env(&[
        ("HERALD_BIND", "0.0.0.0:9000"),
        ("HERALD_DATA_DIR", "/srv/herald"),
        ("HERALD_SESSION_IDLE_TIMEOUT_MINUTES", "5"),
    ]))
    .unwrap();
    assert_eq!(c.bind.port(), 9000);
    assert_eq!(c.base_url.as_str(), "http://0.0.0.0:9000/");
    assert_eq!(
        c.database_url.expose_secret(),
        "sqlite:///srv/herald/herald.db"
    );
    assert_eq!(c.session_idle_timeout, Duration::from_secs(300));
    let err = Config::load(env(&[("HERALD_BIND", "nope")])).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("HERALD_BIND = \"nope\": expected an address"),
        "{text}"
    );
}

#[test]
fn a_numeric_secret_stays_text() {
    let token = "12345678901234567890";
    let c = Config::load(env(&[("HERALD_METRICS_TOKEN", token)])).unwrap();
    assert_eq!(c.metrics_token.unwrap().expose_secret(), token);
}

#[test]
fn the_file_is_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.toml");
    std::fs::write(
        &path,
        "bind = \"127.0.0.1:7000\"\nworkers = 3\ntrusted_proxies = [\"10.0.0.1\", \"10.0.0.2\"]\ncolour = \"blue\"\n",
    )
    .unwrap();
    let file = path.display().to_string();
    let c = Config::load(env(&[("HERALD_CONFIG", &file), ("HERALD_WORKERS", "4")])).unwrap();
    assert_eq!(c.bind.port(), 7000);
    assert_eq!(c.workers, 4);
    assert_eq!(c.trusted_proxies.len(), 2);
    assert_eq!(
        c.warnings,
        [format!("unknown key \"colour\" in {file} ignored")]
    );
    std::fs::write(&path, "session_absolute_timeout_hours = 0\n").unwrap();
    let err = Config::load(env(&[("HERALD_CONFIG", &file)])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "session_absolute_timeout_hours in {file} = \"0\": expected a whole number from 1 to 720"
        )
    );
    std::fs::write(&path, "bind = \n").unwrap();
    let err = Config::load(env(&[("HERALD_CONFIG", &file)])).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!("cannot read {file}")),
        "{err}"
    );
    let missing = dir.path().join("missing.toml").display().to_string();
    assert!(Config::load(env(&[("HERALD_CONFIG", &missing)])).is_err());
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
    let described = c.describe();
    assert!(described.contains("database_url = postgres://u:[redacted]@db/herald\n"));
    assert!(described.contains("secret_key = [redacted]\n"));
    assert!(described.contains("session_idle_timeout_minutes = 30\n"));
    for text in [format!("{c:?}"), described] {
        assert!(!text.contains("hunter2secret"), "{text}");
        assert!(!text.contains("smtppass99"), "{text}");
        assert!(!text.contains(&"k".repeat(40)), "{text}");
    }
    let err = Config::load(env(&[("HERALD_SECRET_KEY", "short-secret")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "HERALD_SECRET_KEY = [redacted]: must be at least 32 characters"
    );
}

#[test]
fn unknown_variables_are_warned_about() {
    let c = Config::load(env(&[("HERALD_BINDD", "x")])).unwrap();
    assert!(c.warnings[0].contains("HERALD_BINDD"));
}

#[test]
fn check_config_refuses_the_smtp_urls_serve_would() {
    // check-config and serve both go through Config::load and SmtpUrl::parse.
    let e = Config::load(env(&[("HERALD_SMTP_URL", "smtp://mail.example?tls=maybe")])).unwrap_err();
    assert!(e.to_string().contains("tls=maybe"), "{e}");
}
