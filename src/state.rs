//! What request handlers share, at the bottom of the house: every feature may take
//! it, and it knows no feature.

use std::sync::Arc;

use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::links::LinkSigner;
use crate::mail::Mailer;

/// Shared by every request handler (as `web::Data<AppState>`).
pub struct AppState {
    pub db: Db,
    pub config: Config,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub mailer: Mailer,
    /// The DKIM key the mailer signs with, read again now and then.
    pub dkim: crate::dkim::Signer,
    /// Sends webhooks (shared by every job run, so connections are reused).
    pub http: crate::webhook::Client,
    /// The settings, for the rate limit and the jobs (read at most once a second).
    pub settings: Arc<crate::settings::Cached>,
    /// Signs and checks unsubscribe links.
    pub links: LinkSigner,
    /// Makes the signing secrets of Send HTTP Request from their stored salts.
    pub webhook_keys: LinkSigner,
    /// Signs and checks the links that confirm a system user's new email.
    pub account_links: LinkSigner,
    /// The suppression list as the check before every send reads it.
    pub suppressed: Arc<crate::suppressions::Checker>,
    /// Seals the secrets Herald must read again (a provider's signing key).
    pub sealer: crate::sealed::Sealer,
    /// Amazon SNS's signing certificates, fetched once each.
    pub sns: crate::sns::Certificates,
    /// Makes and reads the tokens of tracked links and open images.
    pub tracking: crate::tracking::Tokens,
    /// Signs the links of double opt-in confirmation emails.
    pub confirmations: crate::links::Links,
    /// The image proxies whose opens are machines'.
    pub image_proxies: crate::networks::Networks,
    /// Tracked emails as clicks and opens find them, for a second (a burst of
    /// clicks on one email reads it once).
    pub tracked: crate::cache::Recent<String, Option<crate::deliveries::TrackedDelivery>>,
}

/// What a job may use while it executes — and nothing of the web application.
#[derive(Clone)]
pub struct JobContext {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub mailer: Mailer,
    pub hasher: PasswordHasher,
    /// The public URL of the admin UI, for links in emails.
    pub base_url: url::Url,
    /// Signs unsubscribe links.
    pub links: LinkSigner,
    /// Makes webhook signing secrets from their salts.
    pub webhook_keys: LinkSigner,
    /// Sends webhooks, refusing the operator's own network.
    pub http: crate::webhook::Client,
    /// The settings, read at most once a second (shared with the requests).
    settings: Arc<crate::settings::Cached>,
    /// The suppression list's check before every send.
    pub suppressed: Arc<crate::suppressions::Checker>,
    /// Makes the tokens of tracked links and open images.
    pub tracking: crate::tracking::Tokens,
    /// Signs the links of double opt-in confirmation emails.
    pub confirmations: crate::links::Links,
}

impl JobContext {
    /// The job's view of the application.
    pub fn of(state: &AppState) -> Self {
        Self {
            db: state.db.clone(),
            clock: state.clock.clone(),
            mailer: state.mailer.clone(),
            hasher: state.hasher.clone(),
            base_url: state.config.base_url.clone(),
            links: state.links.clone(),
            webhook_keys: state.webhook_keys.clone(),
            http: state.http.clone(),
            settings: state.settings.clone(),
            suppressed: state.suppressed.clone(),
            tracking: state.tracking.clone(),
            confirmations: state.confirmations.clone(),
        }
    }

    /// The settings as stored now — or up to a second ago when another instance
    /// saved them: every run needs them, and they seldom change.
    pub async fn settings(&self) -> Result<crate::settings::Settings, sqlx::Error> {
        self.settings.load(&self.db).await
    }
}
