//! Contact pages: list and search, create, edit, block, delete, group membership
//! (the picker endpoint the automation editor uses is `picker.rs`).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::memberships::load;
use crate::audit::Action;
use crate::consent;
use crate::contacts::groups::{self, Group};
use crate::contacts::search::Cursor;
use crate::contacts::{Contact, ContactForm, SaveError, Status};
use crate::events::catalogue::Source;
use crate::intake::events::Event;
use crate::state::AppState;
use crate::web::form::FieldErrors;
use crate::web::{
    AppError, ConfirmPage, CurrentUser, FlashKind, PageContext, audited_change, flash, redirect,
    render,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/contacts", web::get().to(list))
        .route("/contacts", web::post().to(create))
        .route("/contacts/new", web::get().to(new_page))
        .route("/contacts/picker", web::get().to(super::picker::picker))
        .configure(crate::pages::contacts::import::routes)
        .route("/contacts/{id}", web::get().to(show))
        .route("/contacts/{id}/export", web::get().to(export))
        .route("/contacts/{id}", web::post().to(update))
        .route("/contacts/{id}/edit", web::get().to(edit_page))
        .route("/contacts/{id}/block", web::post().to(block))
        .route("/contacts/{id}/unblock", web::post().to(unblock))
        .route("/contacts/{id}/delete", web::get().to(confirm_delete))
        .route("/contacts/{id}/delete", web::post().to(delete))
        .route(
            "/contacts/{id}/groups",
            web::post().to(super::memberships::join),
        )
        .route(
            "/contacts/{id}/groups/{group_id}/remove",
            web::post().to(super::memberships::leave),
        )
        .configure(groups::routes);
}

const PAGE_SIZE: i64 = 50;

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
    after_id: Option<i64>,
    /// The cursor is among the matches inside words.
    #[serde(default)]
    inner: Option<String>,
    /// Only the members of this group ("" for everyone).
    #[serde(default)]
    group: String,
    /// The cursors of the pages before this one ("id:key" per line), for Previous.
    #[serde(default)]
    trail: String,
}

#[derive(Template)]
#[template(path = "contacts/list.html")]
struct ListPage {
    ctx: PageContext,
    q: String,
    /// The group the list is filtered by, and every group (id, name) to choose.
    group: Option<(i64, String)>,
    groups: Vec<(i64, String)>,
    contacts: Vec<Contact>,
    next: Option<String>,
    previous: Option<String>,
    /// "1,204 contacts", "200 or more match" …
    total: String,
    /// The first row's number on this page.
    first: usize,
    /// The link to the first page of this search.
    first_page: String,
    paged: bool,
}

async fn list(
    state: web::Data<AppState>,
    ctx: PageContext,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let after = match (&query.after, query.after_id) {
        (Some(key), Some(id)) => Some(Cursor {
            key: key.clone(),
            id,
            inner: query.inner.is_some(),
        }),
        _ => None,
    };
    let q: String = query.q.chars().take(200).collect();
    let trail = crate::contacts::search::parse_trail(&query.trail);
    let groups: Vec<(i64, String)> = crate::contacts::groups::list(&state.db)
        .await?
        .into_iter()
        .map(|g| (g.id, g.name))
        .collect();
    let group = match query.group.trim() {
        "" => None,
        raw => Some(
            raw.parse::<i64>()
                .ok()
                .and_then(|id| groups.iter().find(|(g, _)| *g == id).cloned())
                .ok_or_else(|| AppError::BadRequest("There is no such group.".into()))?,
        ),
    };
    let group_id = group.as_ref().map(|(id, _)| *id);
    let (contacts, next) = match group_id {
        Some(g) => {
            let after_id = after.as_ref().map_or(0, |c| c.id);
            crate::contacts::search::search_in_group(&state.db, g, &q, after_id, PAGE_SIZE).await?
        }
        None => crate::contacts::search::search(&state.db, &q, after.as_ref(), PAGE_SIZE).await?,
    };
    // Next remembers where this page began; Previous goes back one step.
    let next = next.map(|c| {
        let mut behind = trail.clone();
        if let Some(a) = &after {
            behind.push(a.clone());
        } else {
            behind.clear();
        }
        crate::contacts::search::page_link(&q, group_id, Some(&c), &behind)
    });
    let previous = after.as_ref().map(|_| match trail.split_last() {
        Some((last, rest)) => crate::contacts::search::page_link(&q, group_id, Some(last), rest),
        None => crate::contacts::search::page_link(&q, group_id, None, &[]),
    });
    let first = if after.is_some() {
        (trail.len() + 1) * PAGE_SIZE as usize + 1
    } else {
        1
    };
    render(
        StatusCode::OK,
        &ListPage {
            ctx,
            total: match group_id {
                Some(g) => crate::contacts::search::total_in_group(&state.db, g, &q).await?,
                None => crate::contacts::search::total(&state.db, &q).await?,
            },
            first_page: crate::contacts::search::page_link(&q, group_id, None, &[]),
            group,
            groups,
            first,
            previous,
            contacts,
            next,
            paged: after.is_some(),
            q,
        },
    )
}

/// One attribute row of the form.
pub struct AttributeRow {
    pub index: usize,
    pub name: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "contacts/form.html")]
struct FormPage {
    ctx: PageContext,
    id: Option<i64>,
    form: ContactForm,
    rows: Vec<AttributeRow>,
    errors: FieldErrors,
}

impl FormPage {
    fn new(ctx: PageContext, id: Option<i64>, form: ContactForm, errors: FieldErrors) -> Self {
        let mut rows: Vec<AttributeRow> = form
            .attributes
            .iter()
            .enumerate()
            .map(|(index, (name, value))| AttributeRow {
                index,
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        let n = rows.len();
        rows.extend((n..n + 3).map(|index| AttributeRow {
            index,
            name: String::new(),
            value: String::new(),
        }));
        Self {
            ctx,
            id,
            form,
            rows,
            errors,
        }
    }
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
    fn action(&self) -> String {
        self.id
            .map_or_else(|| "/contacts".to_string(), |id| format!("/contacts/{id}"))
    }
}

async fn new_page(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(
        StatusCode::OK,
        &FormPage::new(ctx, None, ContactForm::default(), FieldErrors::new()),
    )
}

fn saved_error(e: SaveError) -> Result<FieldErrors, AppError> {
    match e {
        SaveError::Duplicate => Ok(FieldErrors::from([(
            "email",
            SaveError::Duplicate.to_string(),
        )])),
        SaveError::Database(e) => Err(e.into()),
    }
}

async fn create(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    pairs: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let form = ContactForm::from_pairs(pairs.into_inner());
    let input = match form.parse() {
        Ok(i) => i,
        Err(errors) => {
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &FormPage::new(ctx, None, form, errors),
            );
        }
    };
    let mut tx = state.db.begin().await?;
    match crate::contacts::create(&mut tx, &input, Source::Ui, state.clock.now_ms()).await {
        Ok(id) => {
            state.db.commit(tx).await?;
            flash(
                &session,
                FlashKind::Success,
                format!("Contact {} created.", input.email),
            );
            Ok(redirect(&format!("/contacts/{id}")))
        }
        Err(e) => {
            let errors = saved_error(e)?;
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &FormPage::new(ctx, None, form, errors),
            )
        }
    }
}

#[derive(Template)]
#[template(path = "contacts/show.html")]
struct ShowPage {
    ctx: PageContext,
    contact: Contact,
    attributes: Vec<(String, String)>,
    groups: Vec<Group>,
    other_groups: Vec<Group>,
    events: Vec<Event>,
    runs: Vec<crate::scheduler::runs::RunRow>,
    /// The emails the contact was sent, and what became of them.
    deliveries: Vec<crate::deliveries::Delivery>,
    /// The contact's address on the suppression list, if it is.
    suppressed: Option<crate::suppressions::Suppression>,
    /// The zone run times are shown in (Settings).
    zone: String,
    /// Groups the contact asked to join and has not confirmed yet.
    pending: Vec<consent::Pending>,
    /// How the contact's consent to each group was given and withdrawn.
    consents: Vec<consent::ConsentRecord>,
}

impl ShowPage {
    fn group_name(&self, id: &Option<i64>) -> String {
        let Some(id) = id else { return String::new() };
        self.groups
            .iter()
            .chain(&self.other_groups)
            .find(|g| g.id == *id)
            .map_or_else(|| "a deleted group".to_string(), |g| g.name.clone())
    }
}

async fn show(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let contact = load(&state, *id).await?;
    let attributes = crate::contacts::attributes(&state.db, contact.id).await?;
    let groups = groups::of_contact(&state.db, contact.id).await?;
    let pending = consent::pending_of(&state.db, contact.id).await?;
    let consents = consent::records_of(&state.db, contact.id).await?;
    let other_groups = groups::list(&state.db)
        .await?
        .into_iter()
        .filter(|g| !groups.iter().any(|m| m.id == g.id))
        .filter(|g| !pending.iter().any(|p| p.group_id == g.id))
        .collect();
    let events = crate::intake::events::for_contact(&state.db, contact.id, 50).await?;
    let runs = crate::scheduler::runs::runs_for_contact(
        &state.db,
        crate::types::ContactId(contact.id),
        50,
    )
    .await?;
    let deliveries = crate::deliveries::of_contact(&state.db, contact.id, 50).await?;
    let suppressed = crate::suppressions::find(&state.db, &contact.email).await?;
    let zone = crate::settings::Settings::load(&state.db)
        .await?
        .default_time_zone;
    render(
        StatusCode::OK,
        &ShowPage {
            zone,
            ctx,
            deliveries,
            suppressed,
            contact,
            attributes,
            groups,
            other_groups,
            events,
            runs,
            pending,
            consents,
        },
    )
}

/// The contact's data as one JSON file (the right of access), audited.
async fn export(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let entry = crate::audit::Entry {
        actor: &crate::audit::Actor::user(me.id, &me.email),
        action: Action::ContactExported,
        target: &format!("contact #{}", *id),
        detail: "",
        ip: &crate::web::client_ip(&req, &state.config.trusted_proxies),
    };
    let data = crate::contacts::export::audited(&state.db, *id, state.clock.now_ms(), entry)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(crate::web::download::json(
        &crate::contacts::export::file_name(*id),
        crate::contacts::export::to_bytes(&data),
    ))
}

async fn edit_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let contact = load(&state, *id).await?;
    let form = ContactForm {
        email: contact.email.clone(),
        first_name: contact.first_name.clone(),
        last_name: contact.last_name.clone(),
        attributes: crate::contacts::attributes(&state.db, contact.id).await?,
    };
    render(
        StatusCode::OK,
        &FormPage::new(ctx, Some(contact.id), form, FieldErrors::new()),
    )
}

async fn update(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    id: web::Path<i64>,
    pairs: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let before = load(&state, *id).await?;
    let form = ContactForm::from_pairs(pairs.into_inner());
    let input = match form.parse() {
        Ok(i) => i,
        Err(errors) => {
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &FormPage::new(ctx, Some(before.id), form, errors),
            );
        }
    };
    let mut tx = state.db.begin().await?;
    match crate::contacts::update(&mut tx, &before, &input, state.clock.now_ms()).await {
        Ok(changed) => {
            state.db.commit(tx).await?;
            let text = if changed.is_empty() {
                "Nothing changed."
            } else {
                "Contact saved."
            };
            flash(&session, FlashKind::Success, text);
            Ok(redirect(&format!("/contacts/{}", before.id)))
        }
        Err(e) => {
            let errors = saved_error(e)?;
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &FormPage::new(ctx, Some(before.id), form, errors),
            )
        }
    }
}

/// `audited_change` on a contact.
async fn audited(
    state: &AppState,
    req: &HttpRequest,
    me: &CurrentUser,
    action: Action,
    contact: &Contact,
    change: impl AsyncFnOnce(&mut crate::db::Tx, i64) -> Result<(), sqlx::Error>,
) -> Result<(), AppError> {
    let detail = format!("contact #{}", contact.id);
    audited_change(state, req, me, action, &contact.email, &detail, change).await
}

async fn set_status(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: i64,
    status: Status,
) -> Result<HttpResponse, AppError> {
    let contact = load(&state, id).await?;
    if contact.status != status {
        let action = if status == Status::Blocked {
            Action::ContactBlocked
        } else {
            Action::ContactUnblocked
        };
        audited(&state, &req, &me, action, &contact, async |tx, now| {
            crate::contacts::set_status(tx, contact.id, status, now).await
        })
        .await?;
    }
    let text = match status {
        Status::Blocked => format!(
            "{} is blocked: Herald runs no job for this contact.",
            contact.email
        ),
        Status::Active => format!("{} is active again.", contact.email),
    };
    flash(&session, FlashKind::Success, text);
    Ok(redirect(&format!("/contacts/{}", contact.id)))
}

async fn block(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_status(state, req, me, session, *id, Status::Blocked).await
}

async fn unblock(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_status(state, req, me, session, *id, Status::Active).await
}

async fn confirm_delete(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let c = load(&state, *id).await?;
    ConfirmPage {
        ctx,
        title: format!("Delete {}?", c.email),
        message: "The contact, its attributes and its group memberships are deleted. Its events stay in the history. This cannot be undone.".into(),
        action: format!("/contacts/{}/delete", c.id),
        button: "Delete contact",
        cancel: format!("/contacts/{}", c.id),
    }
    .render()
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: CurrentUser,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let contact = load(&state, *id).await?;
    audited(
        &state,
        &req,
        &me,
        Action::ContactDeleted,
        &contact,
        async |tx, _| crate::contacts::delete(tx, contact.id).await,
    )
    .await?;
    flash(
        &session,
        FlashKind::Success,
        format!("Contact {} deleted.", contact.email),
    );
    Ok(redirect("/contacts"))
}
