//! The Deliverability page: what the mail system said of Herald's email in the
//! last 30 days — bounces and complaints per day (a server-rendered chart, read
//! without JavaScript), the rates per prepared message, the suppression list by
//! reason and the latest reports that matched no email.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::deliveries::MessageRates;
use crate::feedback::providers::{self, Credential, Provider};
use crate::feedback::store::Report;
use crate::state::AppState;
use crate::suppressions::Reason;
use crate::web::chart::{Chart, Series};
use crate::web::{AppError, CurrentUser, PageContext, Step, audited_change, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/deliverability", web::get().to(page)).route(
        "/deliverability/providers/{provider}",
        web::post().to(provider_change),
    );
}

/// A provider as the page shows it.
pub struct ProviderRow {
    pub provider: Provider,
    /// Its credential, when it is on.
    pub on: Option<Credential>,
}

/// A webhook address just made: shown once.
pub struct NewWebhook {
    pub provider: Provider,
    pub url: String,
    pub user: &'static str,
    pub password: String,
}

/// Days the page looks back.
const DAYS: usize = 30;
const HOUR_MS: i64 = 3_600_000;

/// What the chart stacks, bottom to top: the report kind, and its label and colour.
const SERIES: [(&str, Series); 3] = [
    (
        "hard_bounce",
        Series {
            label: "Hard bounces",
            colour: "#c92a2a",
        },
    ),
    (
        "soft_bounce",
        Series {
            label: "Soft bounces",
            colour: "#e8590c",
        },
    ),
    (
        "complaint",
        Series {
            label: "Complaints",
            colour: "#862e9c",
        },
    ),
];

#[derive(Template)]
#[template(path = "admin/deliverability.html")]
struct Page {
    ctx: PageContext,
    /// Bounces and complaints per day, with the emails sent.
    chart: Chart,
    sent: i64,
    rates: Vec<MessageRates>,
    suppressed: Vec<(Reason, i64)>,
    unmatched: Vec<Report>,
    unmatched_total: i64,
    providers: Vec<ProviderRow>,
    /// The webhook address made by this request, shown once.
    made: Option<NewWebhook>,
    /// A provider's key that was refused, and why.
    refused: Option<(Provider, String)>,
    /// The address providers post to, per provider code appended.
    endpoint: String,
}

impl Page {
    /// Why `provider`'s key was refused, if it was.
    fn refusal(&self, provider: &Provider) -> Option<&str> {
        self.refused
            .as_ref()
            .filter(|(p, _)| p == provider)
            .map(|(_, why)| why.as_str())
    }

    fn suppressed_total(&self) -> i64 {
        self.suppressed.iter().map(|(_, n)| n).sum()
    }

    /// "2.5 %" of `n` in `of`.
    fn percent(&self, n: &i64, of: &i64) -> String {
        crate::deliveries::percent(*n, *of)
    }
}

async fn page(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    show(&state, ctx, None, None).await
}

/// The user name a provider's webhook sends with its password.
const WEBHOOK_USER: &str = "herald";

#[derive(serde::Deserialize)]
struct ProviderForm {
    action: String,
    /// SendGrid's verification key, pasted.
    #[serde(default)]
    public_key: String,
}

/// Makes a provider's webhook credentials (shown once) or turns it off; audited.
async fn provider_change(
    state: web::Data<AppState>,
    ctx: PageContext,
    me: CurrentUser,
    req: HttpRequest,
    provider: web::Path<String>,
    form: web::Form<ProviderForm>,
) -> Result<HttpResponse, AppError> {
    let provider = Provider::from_code(&provider).ok_or(AppError::NotFound)?;
    let who: (&AppState, _, _, _) = (&state, &req, &me, provider);
    let mut secret = None;
    match form.action.as_str() {
        "make" if !provider.herald_makes_credentials() => {
            let parsed = match provider {
                Provider::Mailgun => providers::mailgun::parse_key(&form.public_key)
                    .map(|key| vec![state.sealer.seal(providers::MAILGUN_SEALED_FOR, &key)]),
                Provider::Ses => providers::ses::parse_topics(&form.public_key),
                _ => providers::sendgrid::parse_key(&form.public_key).map(|key| vec![key]),
            };
            let given = match parsed {
                Ok(given) => given,
                Err(why) => return show(&state, ctx, None, Some((provider, why))).await,
            };
            let given = match provider {
                Provider::Mailgun => providers::Given::SealedSecret(&given[0]),
                Provider::Ses => providers::Given::Topics(&given),
                _ => providers::Given::PublicKey(&given[0]),
            };
            audited(
                who,
                "webhook key kept",
                async |tx: &mut crate::db::Tx, now| providers::keep(tx, provider, given, now).await,
            )
            .await?;
        }
        "make" => {
            let made = &mut secret;
            audited(
                who,
                "new webhook credentials made",
                async |tx: &mut crate::db::Tx, now| {
                    *made = Some(providers::make_credential(tx, provider, now).await?);
                    Ok(())
                },
            )
            .await?;
        }
        "off" => {
            audited(
                who,
                "webhook turned off",
                async |tx: &mut crate::db::Tx, _| {
                    providers::remove_credential(tx, provider).await.map(|_| ())
                },
            )
            .await?;
        }
        _ => return Err(AppError::NotFound),
    }
    let made = secret.map(|password| NewWebhook {
        provider,
        url: format!(
            "{}api/v1/feedback/{}",
            state.config.base_url,
            provider.code()
        ),
        user: WEBHOOK_USER,
        password,
    });
    show(&state, ctx, made, None).await
}

/// `change`, audited as a change of `provider`'s settings by `me`.
async fn audited(
    (state, req, me, provider): (&AppState, &HttpRequest, &CurrentUser, Provider),
    detail: &str,
    change: impl AsyncFnOnce(&mut crate::db::Tx, i64) -> Result<(), sqlx::Error>,
) -> Result<(), AppError> {
    audited_change(
        state,
        req,
        me,
        crate::audit::Action::SettingsChanged,
        provider.label(),
        detail,
        change,
    )
    .await
}

async fn show(
    state: &AppState,
    ctx: PageContext,
    made: Option<NewWebhook>,
    refused: Option<(Provider, String)>,
) -> Result<HttpResponse, AppError> {
    let now = state.clock.now_ms();
    let zone = jiff::tz::TimeZone::get(&ctx.zone).unwrap_or(jiff::tz::TimeZone::UTC);
    // Where each of the 30 days starts in the page's zone, and where tomorrow does.
    let starts = crate::clock::day_starts(now, &zone, DAYS);
    let labels = starts[..DAYS]
        .iter()
        .map(|ms| crate::clock::day_label(*ms, &zone))
        .collect();
    let series: Vec<Series> = SERIES.iter().map(|(_, s)| *s).collect();
    let mut chart = Chart::new(
        format!(
            "Bounces and complaints per day, last {DAYS} days ({})",
            ctx.zone
        ),
        "No bounce or complaint in these 30 days.",
        labels,
        &series,
    );
    let day_of = |hour: i64| -> Option<usize> {
        let at = hour * HOUR_MS;
        (0..DAYS).find(|&i| starts[i] <= at && at < starts[i + 1])
    };
    let mut sent_per_day = vec![0; DAYS];
    for (hour, n) in crate::deliveries::sent_per_hour(&state.db, starts[0])
        .await
        .step("counting the emails sent")?
    {
        if let Some(i) = day_of(hour) {
            sent_per_day[i] += n;
        }
    }
    for (hour, kind, n) in crate::feedback::store::per_hour(&state.db, starts[0])
        .await
        .step("counting the bounces and complaints")?
    {
        if let (Some(i), Some(s)) = (day_of(hour), SERIES.iter().position(|(k, _)| *k == kind)) {
            chart.add(i, s, n);
        }
    }
    let sent = sent_per_day.iter().sum();
    let chart = chart.with_context("Sent", sent_per_day);
    let rates = crate::deliveries::rates_per_message(&state.db, starts[0])
        .await
        .step("reading the rates per message")?;
    let suppressed = crate::suppressions::counts(&state.db)
        .await
        .step("counting the suppression list")?;
    let (unmatched, unmatched_total) = crate::feedback::store::unmatched(&state.db, 5)
        .await
        .step("reading the unmatched reports")?;
    let on = providers::credentials(&state.db)
        .await
        .step("reading the providers' webhooks")?;
    let providers = Provider::ALL
        .into_iter()
        .map(|p| ProviderRow {
            provider: p,
            on: on.iter().find(|c| c.provider == p.code()).cloned(),
        })
        .collect();
    let status = if refused.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        status,
        &Page {
            refused,
            endpoint: format!("{}api/v1/feedback/", state.config.base_url),
            ctx,
            chart,
            sent,
            rates,
            suppressed,
            unmatched,
            unmatched_total,
            providers,
            made,
        },
    )
}
