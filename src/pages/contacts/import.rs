//! The import pages: the upload (checked as a whole before anything changes), the
//! import's page with its report, and the progress as JSON for the live bar.

use crate::web::Step;
use std::path::{Path, PathBuf};

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::audit::{self, Action, Actor};
use crate::contacts::groups::{self, Group};
use crate::contacts::import::batch::{Options, Rejection};
use crate::contacts::import::check::{MAX_UPLOAD_BYTES, check_file};
use crate::contacts::import::store::{Import, find, recent, rejections, start};
use crate::state::AppState;
use crate::web::{AppError, CurrentUser, PageContext, client_ip, redirect, render};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts/import", web::get().to(upload_page))
        .route("/contacts/import", web::post().to(upload))
        .route("/contacts/imports/{id}", web::get().to(import_page))
        .route("/contacts/imports/{id}/start", web::post().to(go_ahead))
        .route("/contacts/imports/{id}/cancel", web::post().to(call_off))
        .route("/contacts/imports/{id}/status", web::get().to(status_json));
}

#[derive(Template)]
#[template(path = "contacts/import.html")]
struct UploadPage {
    ctx: PageContext,
    groups: Vec<Group>,
    imports: Vec<Import>,
    error: Option<String>,
}

async fn upload_page(
    state: web::Data<AppState>,
    ctx: PageContext,
) -> Result<HttpResponse, AppError> {
    upload_form(&state, ctx, StatusCode::OK, None).await
}

async fn upload_form(
    state: &AppState,
    ctx: PageContext,
    status: StatusCode,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let groups = groups::list(&state.db).await?;
    let imports = recent(&state.db, 20).await?;
    render(
        status,
        &UploadPage {
            ctx,
            groups,
            imports,
            error,
        },
    )
}

/// A file being uploaded: deleted unless handed on.
struct Upload(PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

enum UploadError {
    TooLarge,
    Bad(String),
}

/// The options of an upload besides its file.
#[derive(Default)]
struct Chosen {
    group: Option<String>,
    fire: bool,
    consent_asserted: bool,
}

/// Reads the multipart form: the file to a temporary path, and the options.
async fn receive(
    dir: &Path,
    mut payload: Multipart,
) -> Result<(Upload, String, Chosen), UploadError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
    let mut upload = Upload(PathBuf::new());
    let mut file_name = String::new();
    let mut chosen = Chosen::default();
    let broken = |_| UploadError::Bad("The upload was interrupted or is not a form upload.".into());
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(broken)?;
        let field_name = field.name().unwrap_or("").to_string();
        match field_name.as_str() {
            "file" => {
                file_name = field
                    .content_disposition()
                    .and_then(|cd| cd.get_filename())
                    .unwrap_or("upload.csv")
                    .chars()
                    .take(200)
                    .collect();
                let name = crate::types::random_hex(8);
                upload = Upload(dir.join(format!("upload-{name}.csv")));
                let mut out = tokio::fs::File::create(&upload.0)
                    .await
                    .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
                let mut size = 0u64;
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(broken)?;
                    size += chunk.len() as u64;
                    if size > MAX_UPLOAD_BYTES {
                        return Err(UploadError::TooLarge);
                    }
                    out.write_all(&chunk)
                        .await
                        .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
                }
                out.flush()
                    .await
                    .map_err(|_| UploadError::Bad("The upload could not be stored.".into()))?;
            }
            other => {
                let mut value = Vec::new();
                while let Some(chunk) = field.next().await {
                    value.extend_from_slice(&chunk.map_err(broken)?);
                    if value.len() > 1024 {
                        return Err(UploadError::Bad(format!(
                            "The field {other:?} is too long."
                        )));
                    }
                }
                let value = String::from_utf8_lossy(&value).trim().to_string();
                match other {
                    "group_id" if !value.is_empty() => chosen.group = Some(value),
                    "fire_registered" => chosen.fire = true,
                    "consent_asserted" => chosen.consent_asserted = true,
                    _ => {}
                }
            }
        }
    }
    if upload.0.as_os_str().is_empty() {
        return Err(UploadError::Bad("Choose a CSV file to import.".into()));
    }
    Ok((upload, file_name, chosen))
}

async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let dir = state.config.data_dir.join("imports");
    let (upload, file_name, chosen) = match receive(&dir, payload).await {
        Ok(parts) => parts,
        Err(UploadError::TooLarge) => {
            let msg = format!(
                "The file is larger than {} MB.",
                MAX_UPLOAD_BYTES / 1024 / 1024
            );
            return upload_form(&state, ctx, StatusCode::PAYLOAD_TOO_LARGE, Some(msg)).await;
        }
        Err(UploadError::Bad(msg)) => {
            return upload_form(&state, ctx, StatusCode::BAD_REQUEST, Some(msg)).await;
        }
    };
    let group = match chosen.group {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(id) if let Some(g) = groups::find(&state.db, id).await? => Some(g),
            _ => {
                return upload_form(
                    &state,
                    ctx,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some("Choose one of the groups.".into()),
                )
                .await;
            }
        },
    };
    let path = upload.0.clone();
    let checked = tokio::task::spawn_blocking(move || check_file(&path))
        .await
        .map_err(|e| anyhow::anyhow!("checking the upload: {e}"))?;
    let checked = match checked {
        Ok(c) => c,
        Err(msg) => {
            return upload_form(&state, ctx, StatusCode::UNPROCESSABLE_ENTITY, Some(msg)).await;
        }
    };
    let asserted = chosen.consent_asserted && group.as_ref().is_some_and(|g| g.double_opt_in);
    let options = Options {
        group_id: group.as_ref().map(|g| g.id),
        fire_registered: chosen.fire,
        started_by: me.id,
        consent_asserted_by: if asserted {
            ctx.staff_label()
        } else {
            String::new()
        },
        file_name: file_name.clone(),
    };
    // A group that asks for double opt-in, without the assertion: staff see how
    // many confirmation emails the import sends before it starts.
    let confirmations = match &group {
        Some(g) if g.double_opt_in && !asserted => {
            confirmations_needed(&state, g.id, upload.0.clone()).await?
        }
        _ => 0,
    };
    let now = state.clock.now_ms();
    // From here the queued import run owns the file (and deletes it when done).
    let mut upload = upload;
    let path = std::mem::take(&mut upload.0);
    let id = match start(&state.db, now, &path, &checked, &options, confirmations).await {
        Ok(id) => id,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e.into());
        }
    };
    let ip = client_ip(&req, &state.config.trusted_proxies);
    audit::record_now(
        &state.db,
        now,
        audit::Entry {
            actor: &Actor::user(me.id, &me.email),
            action: Action::ContactsImported,
            target: &file_name,
            detail: &format!("import #{id}, {} rows", checked.rows),
            ip: &ip,
        },
    )
    .await?;
    Ok(redirect(&format!("/contacts/imports/{id}")))
}

/// How many of the file's addresses are neither members of the group nor
/// waiting to confirm it: the confirmation emails an import sends.
async fn confirmations_needed(
    state: &AppState,
    group: i64,
    path: PathBuf,
) -> Result<i64, AppError> {
    let addresses =
        tokio::task::spawn_blocking(move || crate::contacts::import::check::addresses(&path))
            .await
            .map_err(|e| anyhow::anyhow!("reading the upload's addresses: {e}"))?;
    let known: Vec<String> = sqlx::query_scalar(
        "SELECT c.email FROM contacts c WHERE c.id IN (SELECT contact_id FROM group_members WHERE group_id = $1 \
         UNION SELECT contact_id FROM pending_memberships WHERE group_id = $1)",
    )
    .bind(group)
    .fetch_all(state.db.read())
    .await?;
    let already = known
        .iter()
        .filter(|e| addresses.contains(e.as_str()))
        .count();
    Ok((addresses.len() - already) as i64)
}

async fn go_ahead(
    state: web::Data<AppState>,
    session: actix_session::Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let import = load(&state, *id).await?;
    let now = state.clock.now_ms();
    if !crate::contacts::import::store::go_ahead(&state.db, now, crate::types::ImportId(import.id))
        .await?
    {
        crate::web::flash(
            &session,
            crate::web::FlashKind::Info,
            "This import had started or was cancelled already.",
        );
    }
    Ok(redirect(&format!("/contacts/imports/{}", import.id)))
}

async fn call_off(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let import = load(&state, *id).await?;
    let now = state.clock.now_ms();
    crate::contacts::import::store::call_off(&state.db, now, crate::types::ImportId(import.id))
        .await?;
    Ok(redirect(&format!("/contacts/imports/{}", import.id)))
}

#[derive(Template)]
#[template(path = "contacts/import_status.html")]
struct ImportPage {
    ctx: PageContext,
    import: Import,
    rejections: Vec<Rejection>,
    /// The runs its events started, per automation (id, name, runs).
    started: Vec<(i64, Option<String>, i64)>,
}

async fn load(state: &AppState, id: i64) -> Result<Import, AppError> {
    find(&state.db, id)
        .await
        .step("loading the import")?
        .ok_or(AppError::NotFound)
}

async fn import_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let import = load(&state, *id).await?;
    let rejections = rejections(&state.db, import.id, 1000).await?;
    let started = crate::contacts::import::store::runs_started(&state.db, import.id).await?;
    render(
        StatusCode::OK,
        &ImportPage {
            ctx,
            import,
            rejections,
            started,
        },
    )
}

#[derive(Serialize)]
struct ImportStatus {
    #[serde(flatten)]
    import: Import,
    percent: i64,
    rate: i64,
}

async fn status_json(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let import = load(&state, *id).await?;
    Ok(HttpResponse::Ok().json(ImportStatus {
        percent: import.percent(),
        rate: import.rate(),
        import,
    }))
}
