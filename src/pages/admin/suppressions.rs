//! The admin page "Suppression list" (the suite's system blacklist): search it,
//! add an address by hand, take one off (both audited), export it as CSV and
//! import a CSV of addresses.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::audit::Action;
use crate::state::AppState;
use crate::suppressions::{self, Reason, Suppression};
use crate::types::EmailAddress;
use crate::web::form::FieldErrors;
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, Step, audited_change, flash,
    redirect, render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/suppressions", web::get().to(list))
        .route("/suppressions", web::post().to(add))
        .route("/suppressions.csv", web::get().to(export))
        .route("/suppressions/import", web::post().to(import))
        .route("/suppressions/remove", web::get().to(confirm_remove))
        .route("/suppressions/remove", web::post().to(remove));
}

/// Entries a page shows.
const PER_PAGE: i64 = 50;
/// The largest CSV an import reads.
const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;

#[derive(Template)]
#[template(path = "admin/suppressions.html")]
struct ListPage {
    ctx: PageContext,
    entries: Vec<Suppression>,
    total: i64,
    q: String,
    next: Option<i64>,
    address: String,
    note: String,
    errors: FieldErrors,
}

impl ListPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    offset: i64,
}

#[allow(clippy::too_many_arguments)]
async fn page(
    state: &AppState,
    ctx: PageContext,
    status: StatusCode,
    query: ListQuery,
    address: String,
    note: String,
    errors: FieldErrors,
) -> Result<HttpResponse, AppError> {
    let offset = query.offset.clamp(0, suppressions::MAX_OFFSET);
    let (entries, total) = suppressions::page(&state.db, &query.q, offset, PER_PAGE)
        .await
        .step("reading the suppression list")?;
    let next = (offset + PER_PAGE < total).then_some(offset + PER_PAGE);
    render(
        status,
        &ListPage {
            ctx,
            entries,
            total,
            q: query.q,
            next,
            address,
            note,
            errors,
        },
    )
}

async fn list(
    state: web::Data<AppState>,
    ctx: PageContext,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    page(
        &state,
        ctx,
        StatusCode::OK,
        query,
        String::new(),
        String::new(),
        FieldErrors::new(),
    )
    .await
}

#[derive(Deserialize)]
struct NewEntry {
    #[serde(default)]
    address: String,
    #[serde(default)]
    note: String,
}

async fn add(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    form: web::Form<NewEntry>,
) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::new();
    let address = EmailAddress::parse(&form.address)
        .map_err(|e| errors.insert("address", e.to_string()))
        .ok();
    if form.note.chars().count() > suppressions::MAX_DETAIL_CHARS {
        errors.insert(
            "note",
            format!(
                "Keep the note to {} characters.",
                suppressions::MAX_DETAIL_CHARS
            ),
        );
    }
    let Some(address) = address.filter(|_| errors.is_empty()) else {
        return page(
            &state,
            ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            ListQuery::default(),
            form.address.clone(),
            form.note.clone(),
            errors,
        )
        .await;
    };
    let note = form.note.trim().to_string();
    let mut added = false;
    audited_change(
        &state,
        &req,
        &me,
        Action::SuppressionAdded,
        address.as_str(),
        Reason::Manual.code(),
        async |tx, now| {
            added = suppressions::add(tx, &address, Reason::Manual, &me.email, &note, now).await?;
            Ok(())
        },
    )
    .await?;
    use actix_session::SessionExt;
    let said = match added {
        true => format!("{address} is on the suppression list: it gets no prepared message."),
        false => format!("{address} was on the suppression list already."),
    };
    flash(&req.get_session(), FlashKind::Success, said);
    Ok(redirect("/admin/suppressions"))
}

#[derive(Deserialize)]
struct AddressQuery {
    #[serde(default)]
    address: String,
}

async fn confirm_remove(
    state: web::Data<AppState>,
    ctx: PageContext,
    query: web::Query<AddressQuery>,
) -> Result<HttpResponse, AppError> {
    let entry = suppressions::find(&state.db, &query.address)
        .await
        .step("reading the suppression list")?
        .ok_or(AppError::NotFound)?;
    ConfirmPage {
        ctx,
        title: format!("Take {} off the suppression list?", entry.address),
        message: format!(
            "It is suppressed: {}. Prepared messages go to it again; if the mailbox still \
             fails, it comes back on the list by itself.",
            entry.why()
        ),
        action: format!(
            "/admin/suppressions/remove?address={}",
            url::form_urlencoded::byte_serialize(entry.address.as_bytes()).collect::<String>()
        ),
        button: "Take it off",
        cancel: "/admin/suppressions".into(),
    }
    .render()
}

async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    query: web::Query<AddressQuery>,
) -> Result<HttpResponse, AppError> {
    let entry = suppressions::find(&state.db, &query.address)
        .await
        .step("reading the suppression list")?
        .ok_or(AppError::NotFound)?;
    audited_change(
        &state,
        &req,
        &me,
        Action::SuppressionRemoved,
        &entry.address,
        entry.reason.code(),
        async |tx, _| suppressions::remove(tx, &entry.address).await.map(|_| ()),
    )
    .await?;
    use actix_session::SessionExt;
    flash(
        &req.get_session(),
        FlashKind::Success,
        format!("{} is off the suppression list.", entry.address),
    );
    Ok(redirect("/admin/suppressions"))
}

/// The whole list as CSV: address, reason, source, detail, added (UTC).
async fn export(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let entries = suppressions::all(&state.db)
        .await
        .step("reading the suppression list")?;
    let header = ["address", "reason", "source", "detail", "added_at"].map(String::from);
    let rows = entries.iter().map(|e| {
        let added = jiff::Timestamp::from_millisecond(e.created_at)
            .map(|t| t.to_string())
            .unwrap_or_default();
        [
            e.address.clone(),
            e.reason.code().to_string(),
            e.source.clone(),
            e.detail.clone(),
            added,
        ]
    });
    crate::web::download::csv("suppressions.csv", std::iter::once(header).chain(rows))
}

/// What an import found in a file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub addresses: Vec<EmailAddress>,
    /// Lines whose address is not one, by line number.
    pub rejected: Vec<usize>,
}

/// The addresses of a CSV: the column named `address` or `email` when the first
/// row names one, else the first column; blank lines are passed over.
pub fn parse_csv(text: &str) -> Parsed {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut parsed = Parsed::default();
    let mut column = 0;
    for (i, record) in reader.records().enumerate() {
        let line = i + 1;
        let Ok(record) = record else {
            parsed.rejected.push(line);
            continue;
        };
        if i == 0 {
            let named = record
                .iter()
                .position(|h| matches!(h.trim().to_lowercase().as_str(), "address" | "email"));
            if let Some(c) = named {
                column = c;
                continue;
            }
        }
        let cell = record.get(column).unwrap_or("").trim();
        if cell.is_empty() && record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match EmailAddress::parse(cell) {
            Ok(a) => parsed.addresses.push(a),
            Err(_) => parsed.rejected.push(line),
        }
    }
    parsed
}

/// Reads the uploaded file (the form's `file` field) into memory.
async fn read_file(mut payload: Multipart) -> Result<Vec<u8>, String> {
    let mut file = Vec::new();
    while let Some(field) = payload.next().await {
        let mut field = field.map_err(|_| "The upload was interrupted.".to_string())?;
        let is_file = field.name() == Some("file");
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| "The upload was interrupted.".to_string())?;
            if is_file {
                file.extend_from_slice(&chunk);
                if file.len() > MAX_IMPORT_BYTES {
                    return Err(format!(
                        "The file is larger than {} MiB.",
                        MAX_IMPORT_BYTES / 1024 / 1024
                    ));
                }
            }
        }
    }
    Ok(file)
}

async fn import(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: PageContext,
    me: CurrentUser,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let refused = |message: String| FieldErrors::from([("file", message)]);
    let file = match read_file(payload).await {
        Ok(f) if f.is_empty() => Err("Choose a CSV file of addresses.".to_string()),
        Ok(f) => String::from_utf8(f).map_err(|_| "The file is not UTF-8 text.".to_string()),
        Err(e) => Err(e),
    };
    let text = match file {
        Ok(t) => t,
        Err(message) => {
            return page(
                &state,
                ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                ListQuery::default(),
                String::new(),
                String::new(),
                refused(message),
            )
            .await;
        }
    };
    let parsed = parse_csv(&text);
    let mut added = 0;
    let detail = format!("{} addresses", parsed.addresses.len());
    audited_change(
        &state,
        &req,
        &me,
        Action::SuppressionsImported,
        "CSV",
        &detail,
        async |tx, now| {
            for address in &parsed.addresses {
                if suppressions::add(tx, address, Reason::Manual, "import", "", now).await? {
                    added += 1;
                }
            }
            Ok(())
        },
    )
    .await?;
    let mut said = format!(
        "Imported {} addresses: {added} new on the list.",
        parsed.addresses.len()
    );
    if !parsed.rejected.is_empty() {
        let lines: Vec<String> = parsed
            .rejected
            .iter()
            .take(20)
            .map(|l| l.to_string())
            .collect();
        said.push_str(&format!(
            " Not addresses, passed over: line {}{}.",
            lines.join(", "),
            if parsed.rejected.len() > 20 {
                ", …"
            } else {
                ""
            }
        ));
    }
    use actix_session::SessionExt;
    flash(&req.get_session(), FlashKind::Success, said);
    Ok(redirect("/admin/suppressions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_reads_the_address_column_or_the_first_one() {
        let p = parse_csv("name,email\nAnn,Ann@Example.com\nBob,not an address\n\n,\n");
        assert_eq!(
            p.addresses
                .iter()
                .map(EmailAddress::as_str)
                .collect::<Vec<_>>(),
            ["ann@example.com"]
        );
        assert_eq!(p.rejected, [3]);
        let p = parse_csv("ann@example.com\nbob@example.com,hard bounce\n");
        assert_eq!(p.addresses.len(), 2);
        assert!(p.rejected.is_empty());
    }
}
