//! `GET /contacts/picker?q=…`: the contacts the automation editor's Contact field
//! offers as you type.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::web::AppError;

#[derive(Deserialize)]
pub(super) struct PickerQuery {
    #[serde(default)]
    q: String,
}

/// One match of the contact picker.
#[derive(Serialize)]
struct PickerItem {
    id: i64,
    email: String,
    name: String,
    blocked: bool,
}

/// `GET /contacts/picker?q=…`: at most 20 contacts by email or name prefix, as JSON.
pub(super) async fn picker(
    state: web::Data<AppState>,
    query: web::Query<PickerQuery>,
) -> Result<HttpResponse, AppError> {
    let q: String = query.q.chars().take(200).collect();
    let items: Vec<PickerItem> = if q.trim().is_empty() {
        Vec::new()
    } else {
        crate::contacts::search::search(&state.db, &q, None, 20)
            .await?
            .0
            .into_iter()
            .map(|c| PickerItem {
                id: c.id,
                name: c.name(),
                blocked: c.is_blocked(),
                email: c.email,
            })
            .collect()
    };
    Ok(HttpResponse::Ok().json(items))
}
