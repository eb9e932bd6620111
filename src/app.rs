//! Builds and runs the application: database, first admin, HTTP server.

use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use rand::RngExt;

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::jobs::registry::Registry;
use crate::state::AppState;
use crate::web::session_store::DbSessionStore;
use crate::web::{AppError, middleware as mw};

/// A built application, listening but not yet serving.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// The scheduler's own connections (see [`Db::background`]).
    background: Db,
    jobs: Arc<Registry>,
    /// The inbound SMTP listener for bounces and complaints, when configured, and
    /// what reads their bounce addresses.
    inbound: Option<TcpListener>,
    bounces: crate::deliveries::BounceAddresses,
    /// Writes opens and clicks; flushed at a graceful stop.
    opens_and_clicks: crate::engagement::writer::Writer,
    pub first_admin: Option<crate::accounts::FirstAdmin>,
}

impl Application {
    /// Connects and migrates the database, creates the first admin when there is no
    /// system user, and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::build_with(config, clock, crate::jobs::catalogue::standard()).await
    }

    /// Like [`build`](Self::build), with the jobs of `jobs` (tests and benchmarks
    /// register their own kinds here; the product uses [`crate::jobs::catalogue::standard`]).
    pub async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        jobs: Registry,
    ) -> anyhow::Result<Self> {
        let jobs = Arc::new(jobs);
        crate::metrics::install();
        private_data_dir(&config.data_dir)?;
        let db = Db::connect(config.database_url.expose_secret()).await?;
        db.migrate().await?;
        let background = db.background(config.database_url.expose_secret()).await?;
        let hasher = PasswordHasher::start(config.hash_threads);
        let first_admin = crate::accounts::bootstrap_first_admin(
            &db,
            &hasher,
            clock.as_ref(),
            &config.admin_email,
        )
        .await?;
        let key = session_key(&config)?;
        let dkim = crate::dkim::Signer::new(key.master().to_vec());
        dkim.refresh(&db).await?;
        let mailer = crate::mail::Mailer::new(
            config.smtp_url.as_ref().map(|s| s.expose_secret()),
            config.smtp_ca_file.as_deref(),
            &config.data_dir,
            config.smtp_timeout,
        )?
        .signing_with(dkim.clone());
        let bounces = crate::deliveries::BounceAddresses::new(key.master());
        let mailer = mailer.bouncing_to(bounces.clone());
        let listener = TcpListener::bind(config.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.bind))?;
        let inbound = match config.inbound_smtp_bind {
            Some(at) => Some(TcpListener::bind(at).map_err(|e| {
                anyhow::anyhow!("inbound_smtp_bind: cannot listen on {at}: {e} (port 25 needs CAP_NET_BIND_SERVICE)")
            })?),
            None => None,
        };
        let port = listener.local_addr()?.port();
        let sns = crate::sns::Certificates::new(config.sns_test_origin.clone());
        let image_proxies = match &config.image_proxies_file {
            Some(path) => crate::networks::Networks::parse(&std::fs::read_to_string(path)?)
                .map_err(|e| anyhow::anyhow!("image_proxies_file {}: {e}", path.display()))?,
            None => crate::networks::Networks::shipped(),
        };
        let state = web::Data::new(AppState {
            tracked: crate::cache::Recent::new(&crate::contacts::TRACKING_CHOICES),
            image_proxies,
            sns,
            tracking: crate::tracking::Tokens::new(key.master()),
            confirmations: crate::links::Links::new(key.master()),
            db,
            config,
            clock,
            hasher,
            mailer,
            dkim,
            links: crate::links::LinkSigner::new(key.master(), "unsubscribe"),
            webhook_keys: crate::links::LinkSigner::new(key.master(), "webhook secret"),
            account_links: crate::links::LinkSigner::new(key.master(), "staff email change"),
            http: crate::webhook::Client::default(),
            settings: Default::default(),
            suppressed: Default::default(),
            sealer: crate::sealed::Sealer::new(key.master().to_vec()),
        });
        let event_writer =
            crate::api::event_writer::EventWriter::start(background.clone(), state.clock.clone());
        let opens_and_clicks = crate::engagement::writer::Writer::start(background.clone());
        let server = server(
            state.clone(),
            web::Data::from(jobs.clone()),
            key,
            listener,
            event_writer,
            opens_and_clicks.clone(),
        )?;
        Ok(Self {
            opens_and_clicks,
            port,
            server,
            state,
            background,
            jobs,
            inbound,
            bounces,
            first_admin,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address actually listened on (with the real port when 0 was asked for).
    pub fn address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.state.config.bind.ip(), self.port)
    }

    /// The port bounces and complaints are received on, when configured.
    pub fn inbound_port(&self) -> Option<u16> {
        self.inbound
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle to stop the server (graceful, as on SIGTERM).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM / Ctrl-C (or [`ServerHandle::stop`]), then lets running
    /// requests finish, then running jobs; what they did is stored, and the runs
    /// not started are handed back to the queue.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let maintenance = tokio::spawn(maintenance(self.state.clone(), self.background.clone()));
        let inbound = match self.inbound {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let inbound = crate::feedback::smtp::Inbound {
                    db: self.state.db.clone(),
                    clock: self.state.clock.clone(),
                    bounces: self.bounces.clone(),
                    settings: self.state.settings.clone(),
                    hostname: self
                        .state
                        .config
                        .base_url
                        .host_str()
                        .unwrap_or("herald")
                        .to_string(),
                };
                tracing::info!(address = %listener.local_addr()?, "receiving bounces and complaints over SMTP");
                Some(tokio::spawn(crate::feedback::smtp::serve(
                    listener, inbound,
                )))
            }
            None => None,
        };
        let mut ctx = crate::state::JobContext::of(&self.state);
        ctx.db = self.background.clone();
        let scheduler = crate::worker::Scheduler {
            jobs: self.jobs.clone(),
            database_url: self.state.config.database_url.expose_secret().to_string(),
            job_timeout: self.state.config.job_timeout,
            housekeeping: {
                let (db, clock) = (self.background.clone(), self.state.clock.clone());
                let confirmations = ctx.clone();
                Arc::new(move || {
                    let (db, clock) = (db.clone(), clock.clone());
                    let confirmations = confirmations.clone();
                    Box::pin(async move {
                        tokio::join!(
                            crate::retention::run(db.clone(), clock.clone()),
                            crate::engagement::decide::run(db, clock),
                            crate::worker::confirmations::run(confirmations),
                        );
                    })
                })
            },
            ctx,
        };
        let worker = crate::worker::Worker::start(scheduler);
        let result = self.server.await;
        // Stop claiming; running jobs get the same grace period as requests.
        worker.stop(&self.background, Duration::from_secs(10)).await;
        // Every open and click answered is written before the database closes.
        self.opens_and_clicks.flush().await;
        maintenance.abort();
        if let Some(inbound) = inbound {
            inbound.abort();
        }
        self.state.hasher.shutdown();
        self.state.db.close().await;
        self.background.close().await;
        result
    }
}

/// The cookie key: from `secret_key`, else from `data_dir/secret_key`, generated once.
pub fn session_key(config: &Config) -> anyhow::Result<Key> {
    if let Some(secret) = &config.secret_key {
        return Ok(Key::derive_from(secret.expose_secret().as_bytes()));
    }
    let path = config.data_dir.join("secret_key");
    if let Ok(hex) = std::fs::read_to_string(&path) {
        let bytes = decode_hex(hex.trim())
            .filter(|b| b.len() == 64)
            .ok_or_else(|| anyhow::anyhow!("{} is damaged: delete it to make a new one (everyone will have to sign in again)", path.display()))?;
        return Ok(Key::from(&bytes));
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let mut bytes = [0u8; 64];
    rand::rng().fill(&mut bytes);
    let hex = crate::types::hex(&bytes);
    write_private(&path, &hex)?;
    if config.database_url.expose_secret().starts_with("postgres") {
        tracing::warn!(
            "no HERALD_SECRET_KEY set: generated {}; instances on other machines need the same key",
            path.display()
        );
    }
    Ok(Key::from(&bytes))
}

/// Makes `dir` (the SQLite file, the outbox, uploads, the generated key) readable
/// by Herald's own user only: the folder 0700, every file in it 0600. A folder an
/// earlier version made with wider modes is tightened, with a log line.
fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
            return Ok(());
        }
        let mut tightened = 0;
        let mut folders = vec![dir.to_path_buf()];
        while let Some(folder) = folders.pop() {
            for path in std::iter::once(Ok(folder.clone()))
                .chain(std::fs::read_dir(&folder)?.map(|e| e.map(|e| e.path())))
            {
                let path = path?;
                let meta = std::fs::symlink_metadata(&path)?;
                if meta.file_type().is_symlink() {
                    continue;
                }
                if meta.is_dir() && path != folder {
                    folders.push(path);
                    continue;
                }
                let private = if meta.is_dir() { 0o700 } else { 0o600 };
                if meta.permissions().mode() & 0o077 != 0 {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(private))?;
                    tightened += 1;
                }
            }
        }
        if tightened > 0 {
            tracing::warn!(
                folder = %dir.display(),
                tightened,
                "others could read Herald's data folder: it and its files are now readable by this user only"
            );
        }
    }
    Ok(())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(content.as_bytes())
}

fn server(
    state: web::Data<AppState>,
    jobs: web::Data<Registry>,
    key: Key,
    listener: TcpListener,
    event_writer: crate::api::event_writer::EventWriter,
    opens_and_clicks: crate::engagement::writer::Writer,
) -> anyhow::Result<Server> {
    let workers = state.config.workers;
    // One limiter for every worker thread.
    let limiter = web::Data::new(crate::api::limit::Limiter::default());
    let known_keys = web::Data::new(crate::api::auth::KnownKeys::default());
    let write_probe = web::Data::new(crate::pages::probes::WriteProbe::default());
    // One writer for every worker thread: calls of all threads are written together.
    let event_writer = web::Data::new(event_writer);
    let opens_and_clicks = web::Data::new(opens_and_clicks);
    /// Over HTTPS a cookie's name carries the prefix browsers enforce: `__Host-`
    /// (Secure, path `/`, no domain: no subdomain or plain-HTTP page can set or
    /// shadow it) where the path allows, `__Secure-` otherwise.
    fn cookie_name(name: &str, path: &str, https: bool) -> String {
        match (https, path) {
            (false, _) => name.to_string(),
            (true, "/") => format!("__Host-{name}"),
            (true, _) => format!("__Secure-{name}"),
        }
    }
    let server = HttpServer::new(move || {
        let config = &state.config;
        let sessions = |kind: &'static str, cookie: &str, path: &str| {
            let store = DbSessionStore::new(
                state.db.clone(),
                state.clock.clone(),
                kind,
                config.session_absolute_timeout,
            );
            let idle = actix_web::cookie::time::Duration::seconds(
                config.session_idle_timeout.as_secs() as i64,
            );
            SessionMiddleware::builder(store, key.clone())
                .cookie_name(cookie_name(cookie, path, config.is_https()))
                .cookie_path(path.into())
                .cookie_secure(config.is_https())
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                .session_lifecycle(
                    BrowserSession::default()
                        .state_ttl(idle)
                        .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                )
                .build()
        };
        App::new()
            .app_data(state.clone())
            .app_data(jobs.clone())
            .app_data(limiter.clone())
            .app_data(event_writer.clone())
            .app_data(opens_and_clicks.clone())
            .app_data(known_keys.clone())
            .app_data(write_probe.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(crate::web::input::MAX_FORM_BYTES)
                    .error_handler(|e, _| {
                        AppError::BadRequest(format!("The form could not be read: {e}.")).into()
                    }),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                AppError::BadRequest(format!("The address could not be read: {e}.")).into()
            }))
            .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
            .wrap(from_fn(crate::web::input::reject_control_characters))
            .wrap(from_fn(mw::head_as_get))
            .wrap(from_fn(mw::request_id))
            .wrap(mw::security_headers(config.is_https()))
            .configure(crate::pages::probes::routes)
            .route("/static/{file}", web::get().to(crate::web::assets::serve))
            // The integration API: API keys only, never cookies.
            .configure(crate::api::routes)
            // One-click unsubscribe: the signed link is the authority; no session, no CSRF
            // token (mail providers post to it, RFC 8058).
            .configure(crate::pages::messages::unsubscribe::routes)
            // Tracked links and open images: the signed token is the authority.
            .configure(crate::pages::messages::tracked::routes)
            // The public preference center: its own session cookie, nothing of the admin UI.
            .service(
                web::scope("/preferences")
                    .wrap(from_fn(crate::web::csrf::protect))
                    .wrap(from_fn(mw::keep_request))
                    .wrap(sessions("contact", "herald_preferences", "/preferences"))
                    .configure(crate::pages::preferences::routes),
            )
            .service(
                web::scope("")
                    .wrap(from_fn(crate::web::csrf::protect))
                    .wrap(from_fn(mw::keep_request))
                    .wrap(sessions("staff", "herald_session", "/"))
                    .configure(crate::pages::staff::sign_in::public_routes)
                    .service(
                        web::scope("")
                            .wrap(from_fn(mw::require_staff))
                            .configure(crate::pages::staff::sign_in::staff_routes)
                            .configure(crate::pages::dashboard::routes)
                            .configure(crate::pages::contacts::people::routes)
                            .configure(crate::pages::automations::routes)
                            .configure(crate::pages::messages::editor::routes)
                            .configure(crate::pages::messages::preview::routes)
                            .configure(crate::pages::stats::routes)
                            .service(
                                web::scope("/admin")
                                    .wrap(from_fn(mw::require_admin))
                                    .configure(crate::pages::staff::users::routes)
                                    .configure(crate::pages::admin::audit::routes)
                                    .configure(crate::pages::admin::settings::routes)
                                    .configure(crate::pages::admin::preference_center::routes)
                                    .configure(crate::pages::admin::api_keys::routes)
                                    .configure(crate::pages::admin::suppressions::routes)
                                    .configure(crate::pages::admin::reports::routes)
                                    .configure(crate::pages::admin::deliverability::routes),
                            )
                            .default_service(web::to(not_found)),
                    ),
            )
    })
    .shutdown_timeout(10)
    .listen(listener)?;
    let server = if workers > 0 {
        server.workers(workers)
    } else {
        server
    };
    Ok(server.run())
}

async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Removes expired sessions and old sign-in failures now and then (on `db`, the
/// connections of the work outside requests).
async fn maintenance(state: web::Data<AppState>, db: Db) {
    // Tables are tidied every 30 s, expired sessions purged every 10 minutes.
    for round in 0u64.. {
        if round % 20 == 0 {
            let now = state.clock.now_ms();
            if let Err(e) = crate::web::session_store::purge_expired(&db, now).await {
                tracing::warn!(error = %e, "purging expired sessions failed");
            }
            if let Err(e) = crate::auth::throttle::purge_old(&db, now).await {
                tracing::warn!(error = %e, "purging old sign-in failures failed");
            }
        }
        // A DKIM key made by another instance or the command line is used within
        // half a minute.
        if let Err(e) = state.dkim.refresh(&db).await {
            tracing::warn!(error = %e, "reading the DKIM key failed");
        }
        match db.tidy().await {
            Ok(tables) if !tables.is_empty() => tracing::debug!(?tables, "vacuumed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "vacuuming failed"),
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}
