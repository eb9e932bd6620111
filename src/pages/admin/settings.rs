//! The Settings page: what admins change while Herald runs, checked field by field.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::audit::{self, Action, Actor};
use crate::settings::{Settings, parse_holidays, parse_time_zone};
use crate::state::AppState;
use crate::types::{EmailAddress, Invalid};
use crate::web::Step;
use crate::web::form::FieldErrors;
use crate::web::{
    AppError, CurrentUser, FlashKind, PageContext, client_ip, flash, redirect, render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/settings", web::get().to(settings_page))
        .route("/settings", web::post().to(save_settings))
        .route("/settings/sender", web::post().to(save_sender));
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
    #[serde(default)]
    pub messages_per_day: String,
    #[serde(default)]
    pub api_calls_per_minute: String,
    #[serde(default)]
    pub webhook_hosts: String,
    #[serde(default)]
    pub bounce_domain: String,
    #[serde(default)]
    pub soft_bounce_limit: String,
    #[serde(default)]
    pub soft_bounce_days: String,
    #[serde(default)]
    pub tracking: String,
    #[serde(default)]
    pub engagement_retention_days: String,
    pub confirmation_lifetime_days: String,
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
            messages_per_day: s.messages_per_day.to_string(),
            api_calls_per_minute: s.api_calls_per_minute.to_string(),
            webhook_hosts: s.webhook_hosts.clone(),
            bounce_domain: s.bounce_domain.clone(),
            soft_bounce_limit: s.soft_bounce_limit.to_string(),
            soft_bounce_days: s.soft_bounce_days.to_string(),
            tracking: s.tracking.code().to_string(),
            engagement_retention_days: s.engagement_retention_days.to_string(),
            confirmation_lifetime_days: s.confirmation_lifetime_days.to_string(),
        }
    }
}

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
        let sender_name = check(
            "sender_name",
            short_text(&self.sender_name, "sender name", 100),
        );
        // Left empty, the brand is the sender's name.
        let brand_name = match self.brand_name.trim() {
            "" => sender_name.clone(),
            _ => check(
                "brand_name",
                short_text(&self.brand_name, "brand name", 100),
            ),
        };
        let sender_address = check(
            "sender_address",
            EmailAddress::parse(&self.sender_address).map(|e| e.to_string()),
        );
        let preference_center_url = check("preference_center_url", {
            let s = self.preference_center_url.trim();
            if s.is_empty() {
                Ok(String::new())
            } else if s.chars().any(char::is_control) {
                // The URL parser drops line breaks and tabs; the stored text must not hold them.
                Err(Invalid::new(
                    "An address is one line, without tabs or line breaks.",
                ))
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
            parse_holidays(&self.holidays)
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
        let webhook_hosts = check(
            "webhook_hosts",
            crate::settings::parse_webhook_hosts(&self.webhook_hosts),
        );
        let bounce_domain = check(
            "bounce_domain",
            crate::settings::parse_bounce_domain(&self.bounce_domain),
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
        let engagement_retention_days = number(
            "engagement_retention_days",
            &self.engagement_retention_days,
            1,
            3650,
            "days",
        );
        let confirmation_lifetime_days = number(
            "confirmation_lifetime_days",
            &self.confirmation_lifetime_days,
            1,
            90,
            "days",
        );
        let audit_retention_days = number(
            "audit_retention_days",
            &self.audit_retention_days,
            1,
            3650,
            "days",
        );
        let messages_per_day = number(
            "messages_per_day",
            &self.messages_per_day,
            1,
            100,
            "messages",
        );
        let api_calls_per_minute = number(
            "api_calls_per_minute",
            &self.api_calls_per_minute,
            1,
            1_000_000,
            "calls",
        );
        let soft_bounce_limit = number(
            "soft_bounce_limit",
            &self.soft_bounce_limit,
            1,
            20,
            "soft bounces",
        );
        let soft_bounce_days = number("soft_bounce_days", &self.soft_bounce_days, 1, 60, "days");
        let tracking = crate::settings::Tracking::from_code(&self.tracking);
        if tracking.is_none() {
            errors.insert(
                "tracking",
                "Choose how opens and clicks are tracked.".to_string(),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Settings {
            bounce_domain,
            soft_bounce_limit,
            soft_bounce_days,
            webhook_hosts,
            messages_per_day,
            api_calls_per_minute,
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
            tracking: tracking.unwrap_or_default(),
            engagement_retention_days,
            confirmation_lifetime_days,
        })
    }
}

#[derive(Template)]
#[template(path = "admin/settings.html")]
struct SettingsPage {
    ctx: PageContext,
    form: SettingsForm,
    errors: FieldErrors,
    zones: crate::settings::ZoneChoices,
    dns: Dns,
}

/// The DNS records a sender publishes for the sender address's domain: DKIM (when
/// a key is kept), SPF and DMARC; and whether emails are signed now.
struct Dns {
    domain: String,
    dkim: Option<crate::dkim::Stored>,
    signing: bool,
    /// The bounce address domain, when set: it needs an MX and an SPF record.
    bounce_domain: Option<String>,
    /// Whether Herald receives bounces itself (`inbound_smtp_bind`).
    receiving: bool,
    /// The sending providers whose webhooks are on (named beside the bounce rules).
    providers_on: Vec<&'static str>,
}

impl Dns {
    async fn of(state: &AppState, settings: &Settings) -> Result<Self, AppError> {
        let domain = settings
            .sender_address
            .rsplit_once('@')
            .map_or("example.com", |(_, d)| d)
            .to_ascii_lowercase();
        Ok(Self {
            domain,
            dkim: crate::dkim::load(&state.db)
                .await
                .step("reading the DKIM key")?,
            signing: state.dkim.config().is_some(),
            bounce_domain: settings.bounce_domain().map(str::to_string),
            receiving: state.config.inbound_smtp_bind.is_some(),
            providers_on: crate::feedback::providers::credentials(&state.db)
                .await?
                .iter()
                .filter_map(|c| crate::feedback::providers::Provider::from_code(&c.provider))
                .map(|p| p.label())
                .collect(),
        })
    }
}

impl SettingsPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

async fn settings_page(
    state: web::Data<AppState>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    let settings = Settings::load(&state.db).await?;
    render(
        StatusCode::OK,
        &SettingsPage {
            ctx,
            form: SettingsForm::from(&settings),
            zones: crate::settings::zone_choices(&settings.default_time_zone, ""),
            errors: FieldErrors::new(),
            dns: Dns::of(&state, &settings).await?,
        },
    )
}

/// The Settings page again, with what was typed and a message per bad field.
async fn invalid(
    state: &AppState,
    ctx: PageContext,
    form: SettingsForm,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let dns = Dns::of(state, &Settings::load(&state.db).await?).await?;
    render(
        StatusCode::UNPROCESSABLE_ENTITY,
        &SettingsPage {
            ctx,
            zones: crate::settings::zone_choices(&form.default_time_zone, ""),
            form,
            errors,
            dns,
        },
    )
}

async fn save_settings(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    session: Session,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let settings = match form.parse() {
        Ok(s) => s,
        Err(errors) => return invalid(&state, ctx, form, errors).await,
    };
    store(&state, &req, &me, &settings).await?;
    flash(&session, FlashKind::Success, "Settings saved.");
    Ok(redirect("/admin/settings"))
}

/// Saves `settings`, with an audit entry naming what changed.
async fn store(
    state: &AppState,
    req: &HttpRequest,
    me: &CurrentUser,
    settings: &Settings,
) -> Result<(), AppError> {
    let now = state.clock.now_ms();
    let ip = client_ip(req, &state.config.trusted_proxies);
    let mut tx = state.db.begin().await?;
    let changed = settings.save(&mut tx, now).await?;
    if !changed.is_empty() {
        audit::record(
            &mut tx,
            now,
            audit::Entry {
                actor: &Actor::user(me.id, &me.email),
                action: Action::SettingsChanged,
                target: "settings",
                detail: &changed.join(", "),
                ip: &ip,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The first admin's dashboard asks for these until the sender address is set.
#[derive(Debug, Default, serde::Deserialize)]
struct SenderForm {
    #[serde(default)]
    brand_name: String,
    #[serde(default)]
    sender_name: String,
    #[serde(default)]
    sender_address: String,
}

/// Whether the sender was never set (a fresh install): the dashboard asks for it.
pub fn sender_unset(settings: &Settings) -> bool {
    settings.sender_address == Settings::default().sender_address
}

/// The dashboard's "who sends" form: the brand, the sender's name and address;
/// every other setting stays. A mistake shows the whole Settings page with its
/// messages.
async fn save_sender(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    session: Session,
    form: web::Form<SenderForm>,
) -> Result<HttpResponse, AppError> {
    let current = Settings::load(&state.db).await?;
    let form = SettingsForm {
        brand_name: form.brand_name.clone(),
        sender_name: form.sender_name.clone(),
        sender_address: form.sender_address.clone(),
        ..SettingsForm::from(&current)
    };
    let settings = match form.parse() {
        Ok(s) => s,
        Err(errors) => return invalid(&state, ctx, form, errors).await,
    };
    store(&state, &req, &me, &settings).await?;
    flash(
        &session,
        FlashKind::Success,
        format!(
            "Saved: contacts get email from {} <{}>, under the brand {}.",
            settings.sender_name, settings.sender_address, settings.brand_name
        ),
    );
    Ok(redirect("/dashboard"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_each_bad_field() {
        let form = SettingsForm {
            brand_name: "Acme\u{7}".into(),
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
            messages_per_day: "5".into(),
            api_calls_per_minute: "6000".into(),
            webhook_hosts: "127.0.0.1".into(),
            bounce_domain: "http://bounce.example.com/".into(),
            soft_bounce_limit: "3".into(),
            soft_bounce_days: "0".into(),
            tracking: "everything".into(),
            engagement_retention_days: "180".into(),
            confirmation_lifetime_days: "7".into(),
        };
        let errors = form.parse().unwrap_err();
        let keys: Vec<_> = errors.keys().copied().collect();
        assert_eq!(
            keys,
            [
                "bounce_domain",
                "brand_name",
                "default_time_zone",
                "holidays",
                "password_length",
                "preference_center_url",
                "sender_address",
                "soft_bounce_days",
                "temp_password_lifetime_hours",
                "tracking"
            ]
        );
    }

    #[test]
    fn a_good_form_parses() {
        let mut form = SettingsForm::from(&Settings::default());
        form.default_time_zone = "Europe/Berlin".into();
        form.preference_center_url = "https://prefs.example.com/preferences".into();
        form.sender_name = "Acme News".into();
        form.brand_name = "  ".into();
        let s = form.parse().unwrap();
        assert_eq!(s.default_time_zone, "Europe/Berlin");
        assert_eq!(
            s.brand_name, "Acme News",
            "an empty brand is the sender's name"
        );
    }

    #[test]
    fn a_preference_center_address_is_one_line() {
        for bad in [
            "https://prefs.example.com/\r\nX-Evil: 1",
            "https://prefs.exa\tmple.com/",
        ] {
            let mut form = SettingsForm::from(&Settings::default());
            form.preference_center_url = bad.into();
            let errors = form.parse().unwrap_err();
            assert!(
                errors.keys().any(|k| *k == "preference_center_url"),
                "{bad:?}"
            );
        }
    }
}
