//! Groups: message-preference topics ("Weekly newsletter"). Membership means
//! subscribed. The model, its store and its pages.

use crate::web::Step;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::db::{Db, Tx, is_unique_violation};
use crate::state::AppState;
use crate::web::form::{Checked, FieldErrors, Refused};
use crate::web::{AppError, ConfirmPage, FlashKind, PageContext, flash, redirect, render};

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    description: String,
    visible_in_preference_center: i64,
    double_opt_in: i64,
    members: i64,
    pending: i64,
    created_at: i64,
}

/// A group, with its member count.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub visible_in_preference_center: bool,
    /// Joining asks for a confirmation by email first (double opt-in).
    pub double_opt_in: bool,
    /// Members: confirmed, or joined without a confirmation asked.
    pub members: i64,
    /// Contacts who asked to join and have not confirmed yet (not members).
    pub pending: i64,
    pub created_at: i64,
}

impl From<Row> for Group {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            visible_in_preference_center: r.visible_in_preference_center != 0,
            double_opt_in: r.double_opt_in != 0,
            members: r.members,
            pending: r.pending,
            created_at: r.created_at,
        }
    }
}

const SELECT: &str = "SELECT g.id, g.name, g.description, g.visible_in_preference_center, g.double_opt_in, \
     (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS members, \
     (SELECT COUNT(*) FROM pending_memberships p WHERE p.group_id = g.id) AS pending, g.created_at FROM contact_groups g";

pub async fn list(db: &Db) -> Result<Vec<Group>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY g.name")))
        .fetch_all(db.read())
        .await?;
    Ok(rows.into_iter().map(Group::from).collect())
}

pub async fn find(db: &Db, id: i64) -> Result<Option<Group>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE g.id = $1")))
        .bind(id)
        .fetch_optional(db.read())
        .await?;
    Ok(row.map(Group::from))
}

/// The groups a contact belongs to.
pub async fn of_contact(db: &Db, contact_id: i64) -> Result<Vec<Group>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE g.id IN (SELECT group_id FROM group_members WHERE contact_id = $1) ORDER BY g.name"
    )))
    .bind(contact_id)
    .fetch_all(db.read())
    .await?;
    Ok(rows.into_iter().map(Group::from).collect())
}

/// Whether the contact is a member of the group.
pub async fn is_member(db: &Db, group_id: i64, contact_id: i64) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members WHERE group_id = $1 AND contact_id = $2",
    )
    .bind(group_id)
    .bind(contact_id)
    .fetch_one(db.read())
    .await?;
    Ok(n > 0)
}

/// A group as entered, parsed.
#[derive(Debug, Clone)]
pub struct GroupInput {
    pub name: String,
    pub description: String,
    pub visible: bool,
    pub double_opt_in: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub visible_in_preference_center: Option<String>,
    #[serde(default)]
    pub double_opt_in: Option<String>,
}

impl GroupForm {
    pub fn parse(&self) -> Result<GroupInput, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = self.name.trim();
        if name.is_empty() {
            errors.insert("name", "Enter a name.".into());
        } else if name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.insert("name", "A group name has at most 100 characters.".into());
        }
        if self.description.chars().count() > 1000 {
            errors.insert(
                "description",
                "The description has at most 1,000 characters.".into(),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(GroupInput {
            name: name.to_string(),
            description: self.description.trim().to_string(),
            visible: self.visible_in_preference_center.is_some(),
            double_opt_in: self.double_opt_in.is_some(),
        })
    }
}

/// A name another group has is the input's fault; anything else broke.
fn duplicate_or(e: sqlx::Error) -> Refused<sqlx::Error> {
    if is_unique_violation(&e) {
        Refused::Invalid(FieldErrors::from([(
            "name",
            "A group with this name already exists.".to_string(),
        )]))
    } else {
        Refused::Broken(e)
    }
}

pub async fn create(tx: &mut Tx, input: &GroupInput, now_ms: i64) -> Checked<i64, sqlx::Error> {
    let r = sqlx::query_scalar(
        "INSERT INTO contact_groups (name, description, visible_in_preference_center, double_opt_in, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(&input.name)
    .bind(&input.description)
    .bind(i64::from(input.visible))
    .bind(i64::from(input.double_opt_in))
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await;
    r.map_err(duplicate_or)
}

pub async fn update(
    tx: &mut Tx,
    id: i64,
    input: &GroupInput,
    now_ms: i64,
) -> Checked<(), sqlx::Error> {
    let r = sqlx::query(
        "UPDATE contact_groups SET name = $1, description = $2, visible_in_preference_center = $3, double_opt_in = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(&input.name)
    .bind(&input.description)
    .bind(i64::from(input.visible))
    .bind(i64::from(input.double_opt_in))
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await;
    r.map(|_| ()).map_err(duplicate_or)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/groups", web::get().to(list_page))
        .route("/groups", web::post().to(create_group))
        .route("/groups/new", web::get().to(new_page))
        .route("/groups/{id}", web::get().to(edit_page))
        .route("/groups/{id}/members", web::get().to(members_page))
        .route("/groups/{id}", web::post().to(update_group))
        .route("/groups/{id}/delete", web::get().to(confirm_delete))
        .route("/groups/{id}/delete", web::post().to(delete_group));
}

#[derive(Template)]
#[template(path = "groups/list.html")]
struct ListPage {
    ctx: PageContext,
    groups: Vec<Group>,
}

async fn list_page(state: web::Data<AppState>, ctx: PageContext) -> Result<HttpResponse, AppError> {
    let groups = list(&state.db).await?;
    render(StatusCode::OK, &ListPage { ctx, groups })
}

#[derive(Template)]
#[template(path = "groups/form.html")]
struct FormPage {
    ctx: PageContext,
    id: Option<i64>,
    form: GroupForm,
    errors: FieldErrors,
}

impl FormPage {
    fn error(&self, field: &str) -> Option<&String> {
        self.errors.get(field)
    }
    fn action(&self) -> String {
        self.id
            .map_or_else(|| "/groups".to_string(), |id| format!("/groups/{id}"))
    }
}

async fn new_page(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(
        StatusCode::OK,
        &FormPage {
            ctx,
            id: None,
            // New groups ask for a confirmation unless staff untick it.
            form: GroupForm {
                double_opt_in: Some("on".into()),
                ..GroupForm::default()
            },
            errors: FieldErrors::new(),
        },
    )
}

async fn load(state: &AppState, id: i64) -> Result<Group, AppError> {
    find(&state.db, id)
        .await
        .step("loading the group")?
        .ok_or(AppError::NotFound)
}

async fn edit_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let g = load(&state, *id).await?;
    let form = GroupForm {
        name: g.name,
        description: g.description,
        visible_in_preference_center: g.visible_in_preference_center.then(|| "on".to_string()),
        double_opt_in: g.double_opt_in.then(|| "on".to_string()),
    };
    render(
        StatusCode::OK,
        &FormPage {
            ctx,
            id: Some(g.id),
            form,
            errors: FieldErrors::new(),
        },
    )
}

async fn save(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    id: Option<i64>,
    form: GroupForm,
) -> Result<HttpResponse, AppError> {
    let invalid = |ctx, form, errors| {
        render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &FormPage {
                ctx,
                id,
                form,
                errors,
            },
        )
    };
    let input = match form.parse() {
        Ok(i) => i,
        Err(errors) => return invalid(ctx, form, errors),
    };
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await?;
    let saved = match id {
        Some(id) => update(&mut tx, id, &input, now).await.map(|()| id),
        None => create(&mut tx, &input, now).await,
    };
    match saved {
        Ok(_) => {
            tx.commit().await?;
            flash(
                &session,
                FlashKind::Success,
                format!("Group {:?} saved.", input.name),
            );
            Ok(redirect("/groups"))
        }
        Err(refused) => invalid(ctx, form, refused.fields().step("saving the group")?),
    }
}

async fn create_group(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, AppError> {
    save(state, ctx, session, None, form.into_inner()).await
}

async fn update_group(
    state: web::Data<AppState>,
    ctx: PageContext,
    session: Session,
    id: web::Path<i64>,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, AppError> {
    load(&state, *id).await?;
    save(state, ctx, session, Some(*id), form.into_inner()).await
}

async fn confirm_delete(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let g = load(&state, *id).await?;
    ConfirmPage {
        ctx,
        title: format!("Delete the group {}?", g.name),
        message: format!(
            "Its {} members stop being members. No \"Unsubscribed from Group\" event is recorded for them: the topic is gone, nobody chose to leave it.",
            g.members
        ),
        action: format!("/groups/{}/delete", g.id),
        button: "Delete group",
        cancel: "/groups".into(),
    }
    .render()
}

/// Deleting a group ends its memberships without firing *Unsubscribed from Group*
/// for each member: the topic is gone, nobody chose to leave it.
async fn delete_group(
    state: web::Data<AppState>,
    session: Session,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let group = load(&state, *id).await?;
    let mut tx = state.db.begin().await?;
    sqlx::query("DELETE FROM contact_groups WHERE id = $1")
        .bind(group.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    flash(
        &session,
        FlashKind::Success,
        format!("Group {:?} deleted.", group.name),
    );
    Ok(redirect("/groups"))
}

/// Members shown per page.
const MEMBERS_PER_PAGE: i64 = 50;

#[derive(Template)]
#[template(path = "groups/members.html")]
struct MembersPage {
    ctx: PageContext,
    g: Group,
    /// (id, name, email, blocked) of this page's members.
    members: Vec<(i64, String, String, bool)>,
    page: i64,
    more: bool,
    /// The first 100 contacts waiting to confirm: (id, name, email, asked at, link ends).
    pending: Vec<(i64, String, String, String, String)>,
}

#[derive(Deserialize)]
struct MembersQuery {
    #[serde(default)]
    page: Option<i64>,
}

/// A group's members, oldest contact first (the membership key's order: fast in
/// a group of a million), 50 a page.
async fn members_page(
    state: web::Data<AppState>,
    ctx: PageContext,
    id: web::Path<i64>,
    query: web::Query<MembersQuery>,
) -> Result<HttpResponse, AppError> {
    let g = load(&state, *id).await?;
    let page = query.page.unwrap_or(1).clamp(1, 100_000);
    let rows: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        "SELECT c.id, c.first_name, c.last_name, c.email, c.status FROM group_members m \
         JOIN contacts c ON c.id = m.contact_id WHERE m.group_id = $1 ORDER BY m.contact_id LIMIT $2 OFFSET $3",
    )
    .bind(g.id)
    .bind(MEMBERS_PER_PAGE + 1)
    .bind((page - 1) * MEMBERS_PER_PAGE)
    .fetch_all(state.db.read())
    .await?;
    let more = rows.len() as i64 > MEMBERS_PER_PAGE;
    let members = rows
        .into_iter()
        .take(MEMBERS_PER_PAGE as usize)
        .map(|(id, first, last, email, status)| {
            let name = format!("{first} {last}").trim().to_string();
            (id, name, email, status == "blocked")
        })
        .collect();
    let waiting: Vec<(i64, String, String, String, i64, i64)> = if g.pending > 0 {
        sqlx::query_as(
            "SELECT c.id, c.first_name, c.last_name, c.email, p.requested_at, p.expires_at FROM pending_memberships p \
             JOIN contacts c ON c.id = p.contact_id WHERE p.group_id = $1 ORDER BY p.requested_at DESC LIMIT 100",
        )
        .bind(g.id)
        .fetch_all(state.db.read())
        .await?
    } else {
        Vec::new()
    };
    let pending = waiting
        .into_iter()
        .map(|(id, first, last, email, asked, ends)| {
            let name = format!("{first} {last}").trim().to_string();
            let at = |ms| crate::clock::format_in(ms, &ctx.zone);
            (id, name, email, at(asked), at(ends))
        })
        .collect();
    render(
        StatusCode::OK,
        &MembersPage {
            ctx,
            g,
            members,
            page,
            more,
            pending,
        },
    )
}
