//! The tracked links and open images of prepared messages (see
//! [`crate::tracking`]): `/l/<token>` sends the reader on to where the email
//! pointed (302) and `/o/<token>` answers a 1×1 image, each recording the click
//! or open through the writer without waiting for it. A token that was altered,
//! or names no tracked email, is a 404 page. No session, no CSRF: the signed
//! token is the authority, and nothing changes but the record.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::engagement::writer::{Hit, Writer};
use crate::settings::Tracking;
use crate::state::AppState;
use crate::web::AppError;
use crate::web::middleware::WasHead;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/l/{token}", web::get().to(click))
        .route("/o/{token}", web::get().to(open));
}

/// A click or open this soon after the send is a machine's (a scanner at the
/// receiving server).
const TOO_SOON_MS: i64 = 2_000;

/// User agents of link scanners and security gateways that follow every link.
const SCANNERS: &[&str] = &[
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "symantec",
    "trendmicro",
    "forcepoint",
    "sophos",
    "fortiguard",
    "bitdefender",
    "cisco",
    "ironport",
    "python-requests",
    "curl/",
    "wget/",
    "go-http-client",
    "headlesschrome",
    "bot/",
    "bot;",
    "crawler",
    "spider",
];

/// User agents of the image proxies that fetch every image as the mail arrives.
const IMAGE_PROXIES: &[&str] = &["googleimageproxy", "yahoomailproxy", "ymailproxy"];

fn user_agent(req: &HttpRequest) -> String {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The tracked email a token names, and how its opens and clicks are kept now.
async fn found(
    state: &AppState,
    token: &str,
) -> Result<
    (
        crate::tracking::Named,
        crate::deliveries::TrackedDelivery,
        Tracking,
    ),
    AppError,
> {
    let named = state.tracking.read(token).ok_or(AppError::NotFound)?;
    let delivery = state
        .tracked
        .get_or_load(named.reference.clone(), async || {
            crate::deliveries::tracked(&state.db, &named.reference).await
        })
        .await?
        .ok_or(AppError::NotFound)?;
    let settings = state.settings.load(&state.db).await?;
    Ok((named, delivery, settings.tracking))
}

fn hit(
    d: &crate::deliveries::TrackedDelivery,
    at: i64,
    link: Option<(usize, String)>,
    machine: &'static str,
    tracking: Tracking,
) -> Hit {
    // Anonymous: counted per message and link, never kept with the email or
    // contact — also when the contact asked for it in the preference center.
    let anonymous = tracking == Tracking::Anonymous || d.untracked != 0;
    Hit {
        at,
        delivery_id: (!anonymous).then_some(d.id),
        message_id: d.message_id,
        automation_id: d.automation_id,
        contact_id: d.contact_id.filter(|_| !anonymous),
        link,
        machine,
        anonymous,
    }
}

async fn click(
    state: web::Data<AppState>,
    writer: web::Data<Writer>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (named, d, tracking) = found(&state, &token).await?;
    let position = named.position.ok_or(AppError::NotFound)?;
    let target = d.target(position).ok_or(AppError::NotFound)?;
    let now = state.clock.now_ms();
    let agent = user_agent(&req);
    let machine = if req.extensions().get::<WasHead>().is_some() {
        "a HEAD request"
    } else if now - d.sent_at < TOO_SOON_MS {
        "within 2 seconds of the send"
    } else if SCANNERS.iter().any(|s| agent.contains(s)) {
        "a link scanner"
    } else {
        ""
    };
    if tracking != Tracking::Off {
        writer.record(hit(
            &d,
            now,
            Some((position, target.clone())),
            machine,
            tracking,
        ));
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, target))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish())
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

async fn open(
    state: web::Data<AppState>,
    writer: web::Data<Writer>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (named, d, tracking) = found(&state, &token).await?;
    if named.position.is_some() {
        return Err(AppError::NotFound);
    }
    let now = state.clock.now_ms();
    let agent = user_agent(&req);
    let from_proxy = crate::web::client_ip(&req, &state.config.trusted_proxies)
        .parse()
        .is_ok_and(|ip| state.image_proxies.contains(ip));
    let machine = if now - d.sent_at < TOO_SOON_MS {
        "within 2 seconds of the send"
    } else if from_proxy || IMAGE_PROXIES.iter().any(|p| agent.contains(p)) {
        "an image proxy"
    } else {
        ""
    };
    if tracking != Tracking::Off && req.extensions().get::<WasHead>().is_none() {
        writer.record(hit(&d, now, None, machine, tracking));
    }
    Ok(HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((header::CACHE_CONTROL, "no-store, max-age=0"))
        .body(PIXEL))
}
