//! The command line: `serve` (default), `migrate`, `user create`,
//! `user reset-password`, `check-config`.

use secrecy::ExposeSecret;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::accounts::NewUser;
use crate::app::Application;
use crate::audit::Actor;
use crate::auth::PasswordHasher;
use crate::auth::users::{self, CreateError, Role};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::db::Db;
use crate::types::{EmailAddress, PersonName};

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Event-based automations with a durable scheduler"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web UI and the scheduler (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage system users.
    #[command(subcommand)]
    User(UserCommand),
    /// Print the effective configuration (secrets redacted) and check it.
    CheckConfig,
    /// Send a test email through the configured mail server (or the outbox).
    SendTestEmail {
        #[arg(long)]
        to: String,
    },
    /// Manage API keys.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
    /// Manage the DKIM signing key.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Write a consistent copy of the SQLite database (safe while Herald runs).
    Backup {
        /// The file to create (an existing file is never overwritten).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Ask the running Herald (at `bind`) whether it is alive: exit 0 when
    /// `/healthz` answers 200 (a container's HEALTHCHECK, without curl).
    Healthcheck,
    /// Add synthetic demo contacts, groups and memberships (for trying and measuring).
    SeedDemo {
        /// How many contacts to add.
        #[arg(long, default_value_t = 1000)]
        contacts: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create an API key and print it once.
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Make a signing key for `domain` (replacing any other), keep it sealed in the
    /// database, and print the DNS record to publish. Every email is signed from then on.
    Generate {
        /// The domain of the sender address, e.g. example.com.
        #[arg(long)]
        domain: String,
        /// The selector, e.g. herald (the record is selector._domainkey.domain).
        #[arg(long, default_value = "herald")]
        selector: String,
        /// rsa (2048 bits, verified everywhere) or ed25519.
        #[arg(long, default_value = "rsa")]
        algorithm: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a system user and print a temporary password once.
    Create {
        #[arg(long)]
        email: String,
        /// admin or marketer
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Give a system user a new temporary password and print it once.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

fn init_logging(config: &Config) {
    crate::logging::init(&config.log, config.log_format);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
}

/// Runs one command; the exit code says whether it worked.
pub async fn run(cli: Cli, config: Config) -> ExitCode {
    // Every file Herald writes (the database, its WAL, the outbox's emails, uploads,
    // backups) is readable by its own user only: they hold contacts' data and, in
    // the outbox, passwords.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    if matches!(cli.command, Some(Command::CheckConfig)) {
        print!("{}", config.describe());
        for warning in &config.warnings {
            eprintln!("warning: {warning}");
        }
        println!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    if matches!(cli.command, Some(Command::Healthcheck)) {
        return match healthcheck(config.bind).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("herald: not healthy: {e}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging(&config);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(&config).await,
        Command::User(cmd) => user(&config, cmd).await,
        Command::SeedDemo { contacts } => seed_demo(&config, contacts).await,
        Command::Backup { to } => backup(&config, &to).await,
        Command::ApiKey(ApiKeyCommand::Create { name }) => api_key(&config, &name).await,
        Command::Dkim(DkimCommand::Generate {
            domain,
            selector,
            algorithm,
        }) => dkim_generate(&config, &domain, &selector, &algorithm).await,
        Command::SendTestEmail { to } => send_test_email(&config, &to).await,
        Command::CheckConfig | Command::Healthcheck => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `GET /healthz` on the address Herald listens on (loopback when it listens on
/// every address), within 5 s; Ok when it answers 200.
async fn healthcheck(bind: std::net::SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut at = bind;
    if at.ip().is_unspecified() {
        at.set_ip(match at {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(at).await?;
        stream
            .write_all(format!("GET /healthz HTTP/1.0\r\nHost: {at}\r\n\r\n").as_bytes())
            .await?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(5), ask)
        .await
        .map_err(|_| anyhow::anyhow!("http://{at}/healthz did not answer within 5 s"))?
        .map_err(|e| anyhow::anyhow!("http://{at}/healthz: {e}"))?;
    let status = String::from_utf8_lossy(&answer);
    let status = status.lines().next().unwrap_or_default();
    anyhow::ensure!(
        status.split(' ').nth(1) == Some("200"),
        "http://{at}/healthz answered {status:?}"
    );
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let base = config.base_url.clone();
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    if let Some(admin) = &app.first_admin {
        // Printed once, on the console only (not into the logs).
        println!(
            "First start: created the admin {}. Sign in at {}login with the temporary password: {}",
            admin.email,
            base,
            admin.password.expose()
        );
    }
    // In the log (with its time), not on the console alone.
    tracing::info!(address = %app.address(), "Herald is listening on http://{}", app.address());
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

async fn dkim_generate(
    config: &Config,
    domain: &str,
    selector: &str,
    algorithm: &str,
) -> anyhow::Result<()> {
    let algorithm = crate::dkim::Algorithm::parse(algorithm)
        .map_err(|e| anyhow::anyhow!("--algorithm: {e}"))?;
    for (name, value) in [("--domain", domain), ("--selector", selector)] {
        anyhow::ensure!(
            crate::dkim::is_dns_label_list(value),
            "{name} {value:?}: letters, digits, hyphens and dots only"
        );
    }
    let db = Db::connect(config.database_url.expose_secret()).await?;
    db.migrate().await?;
    let key = crate::app::session_key(config)?;
    let now = SystemClock.now_ms();
    let stored = crate::dkim::create(&db, key.master(), domain, selector, algorithm, now).await?;
    crate::audit::record_now(
        &db,
        now,
        crate::audit::Entry {
            actor: &Actor::named("command line"),
            action: crate::audit::Action::DkimKeyCreated,
            target: &stored.record_name(),
            detail: algorithm.code(),
            ip: "",
        },
    )
    .await?;
    println!(
        "Publish this TXT record, then every email is signed (a running Herald takes the key within 30 s):\n\n{} TXT \"{}\"",
        stored.record_name(),
        stored.record_value()
    );
    Ok(())
}

async fn api_key(config: &Config, name: &str) -> anyhow::Result<()> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        anyhow::bail!("--name: one line of at most 100 characters");
    }
    let db = Db::connect(config.database_url.expose_secret()).await?;
    db.migrate().await?;
    let now = SystemClock.now_ms();
    let mut tx = db.begin().await?;
    let (_, key) = crate::api::keys::create(&mut tx, name, 0, now).await?;
    crate::audit::record(
        &mut tx,
        now,
        crate::audit::Entry {
            actor: &Actor::named("command line"),
            action: crate::audit::Action::ApiKeyCreated,
            target: name,
            detail: "",
            ip: "",
        },
    )
    .await?;
    tx.commit().await?;
    println!("Created the API key {name}: {}", key.expose());
    Ok(())
}

async fn backup(config: &Config, to: &std::path::Path) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose_secret()).await?;
    db.backup_to(to).await?;
    let url = config.database_url.expose_secret();
    let live = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:")
        .split('?')
        .next()
        .unwrap_or_default();
    println!(
        "Backed up the database to {}.\nTo restore: stop Herald, replace {live} with this file \
         (and delete {live}-wal and {live}-shm if they exist), then start Herald again.",
        to.display()
    );
    Ok(())
}

async fn seed_demo(config: &Config, contacts: u64) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose_secret()).await?;
    db.migrate().await?;
    crate::contacts::demo::seed(&db, SystemClock.now_ms(), contacts).await?;
    println!("added {contacts} demo contacts");
    Ok(())
}

async fn send_test_email(config: &Config, to: &str) -> anyhow::Result<()> {
    let to = EmailAddress::parse(to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let db = Db::connect(config.database_url.expose_secret()).await?;
    db.migrate().await?;
    let settings = crate::settings::Settings::load(&db).await?;
    let mailer = crate::mail::Mailer::new(
        config.smtp_url.as_ref().map(|s| s.expose_secret()),
        config.smtp_ca_file.as_deref(),
        &config.data_dir,
        config.smtp_timeout,
    )?;
    let email = crate::mail::Email {
        from_name: settings.sender_name.clone(),
        from_address: settings.sender_address.clone(),
        to_name: String::new(),
        to: to.to_string(),
        subject: format!("Test email from {}", settings.brand_name),
        text: format!(
            "This is a test email from {}. Mail works.\n",
            settings.brand_name
        ),
        html: format!(
            "<p>This is a test email from {}. Mail works.</p>",
            askama::filters::escape(&settings.brand_name, askama::filters::Html)?
        ),
        ..Default::default()
    };
    let posted = mailer
        .send(&email)
        .await
        .map_err(|e| anyhow::anyhow!("sending failed: {e}"))?;
    let queued = posted
        .queued_as
        .map(|id| format!(", the server's id {id}"))
        .unwrap_or_default();
    println!(
        "Sent a test email to {to} (Message-ID {}{queued})",
        posted.message_id
    );
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose_secret()).await?;
    db.migrate().await?;
    println!("migrations applied");
    Ok(())
}

async fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let db = Db::connect(config.database_url.expose_secret()).await?;
    db.migrate().await?;
    let hasher = PasswordHasher::start(1);
    let now = SystemClock.now_ms();
    let actor = Actor::named("command line");
    match cmd {
        UserCommand::Create { email, role, name } => {
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let role = Role::parse(&role)
                .map_err(|_| anyhow::anyhow!("--role: expected admin or marketer"))?;
            let name = if name.trim().is_empty() {
                email
                    .as_str()
                    .split('@')
                    .next()
                    .unwrap_or("User")
                    .to_string()
            } else {
                name
            };
            let name = PersonName::parse(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
            let new = NewUser { email, name, role };
            match crate::accounts::create_user(&db, &hasher, now, &new, &actor, "").await {
                Ok((_, password)) => {
                    println!(
                        "Created {} {} with the temporary password: {}",
                        new.role.code(),
                        new.email,
                        password.expose()
                    );
                    Ok(())
                }
                Err(CreateError::Exists) => anyhow::bail!(
                    "a system user {} already exists (use `herald user reset-password --email {}`)",
                    new.email,
                    new.email
                ),
                Err(e) => Err(e.into()),
            }
        }
        UserCommand::ResetPassword { email } => {
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
            let user = users::find_by_email(&db, email.as_str())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no system user {email}"))?;
            let (password, hash, expires_at) =
                crate::accounts::temporary_password(&db, &hasher, now).await?;
            let mut tx = db.begin().await?;
            users::set_temp_password(&mut tx, user.id, &hash, expires_at, now).await?;
            crate::audit::record(
                &mut tx,
                now,
                crate::audit::Entry {
                    actor: &actor,
                    action: crate::audit::Action::UserPasswordReset,
                    target: email.as_str(),
                    detail: "",
                    ip: "",
                },
            )
            .await?;
            tx.commit().await?;
            println!("New temporary password for {email}: {}", password.expose());
            Ok(())
        }
    }
}
