//! The contact search behind the list and the picker: a prefix of the email, the
//! first or the last name, each an index range scan in key order that stops after
//! the page, merged by the matched text — fast at a million contacts.

use serde::{Deserialize, Serialize};

use super::{COLUMNS, Contact, Row, search_key};
use crate::db::Db;

/// Where a page of search results ends: the matched key and the contact id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub key: String,
    pub id: i64,
}

/// The upper bound of a prefix range: every string starting with `prefix` sorts
/// below it byte-wise.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}{}", char::MAX)
}

#[derive(sqlx::FromRow)]
struct Hit {
    #[sqlx(flatten)]
    row: Row,
    k: String,
}

/// One search branch: an index range scan in key order, selecting `columns`.
/// Placeholders: `$1`/`$2` the range, then the first name (when given), then the
/// cursor, then the limit.
fn branch_sql(columns: &str, key: &str, with_first: bool, with_cursor: bool) -> String {
    let mut n = 2;
    let mut extra = String::new();
    if with_first {
        n += 1;
        extra.push_str(&format!(" AND first_key = ${n}"));
    }
    if with_cursor {
        extra.push_str(&format!(" AND ({key}, id) > (${}, ${})", n + 1, n + 2));
        n += 2;
    }
    format!(
        "SELECT {columns} FROM contacts WHERE {key} >= $1 AND {key} < $2{extra} \
         ORDER BY {key}, id LIMIT ${}",
        n + 1
    )
}

/// What a result row of a branch on `key` holds: the contact and the matched key.
fn hit_columns(key: &str) -> String {
    format!("{COLUMNS}, {key} AS k")
}

/// How a query is searched: (key column, exact first name, prefix).
fn branches(query: &str) -> Vec<(&'static str, Option<String>, String)> {
    let q = search_key(query);
    match q.split_once(' ') {
        Some((first, last)) => vec![("last_key", Some(first.to_string()), last.trim().to_string())],
        None if q.is_empty() => vec![("email", None, q)],
        None => ["email", "first_key", "last_key"]
            .into_iter()
            .map(|k| (k, None, q.clone()))
            .collect(),
    }
}

/// The SQL of each search branch for `query`, first page (for query plans).
pub fn search_statements(query: &str) -> Vec<String> {
    branches(query)
        .into_iter()
        .map(|(key, first, _)| branch_sql(&hit_columns(key), key, first.is_some(), false))
        .collect()
}

/// Contacts whose email, first name or last name starts with `query` (or, for
/// "first last", whose first name is `first` and last name starts with `last`),
/// ordered by the matched text; with an empty query, all contacts by email.
/// Returns a page and the cursor of the next page, if any.
pub async fn search(
    db: &Db,
    query: &str,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<Contact>, Option<Cursor>), sqlx::Error> {
    // Each branch alone yields distinct contacts, so `limit + 1` rows from each
    // hold the page and tell whether there is more, whatever the overlaps.
    let per_branch = limit + 1;
    let mut hits: Vec<Hit> = Vec::new();
    for (key, first, prefix) in branches(query) {
        let sql = branch_sql(&hit_columns(key), key, first.is_some(), after.is_some());
        let mut q = sqlx::query_as::<_, Hit>(sqlx::AssertSqlSafe(sql))
            .bind(prefix.clone())
            .bind(prefix_end(&prefix));
        if let Some(first) = first {
            q = q.bind(first);
        }
        if let Some(c) = after {
            q = q.bind(c.key.clone()).bind(c.id);
        }
        hits.extend(q.bind(per_branch).fetch_all(db.read()).await?);
    }
    hits.sort_by(|a, b| (a.k.as_str(), a.row.id).cmp(&(b.k.as_str(), b.row.id)));
    let mut seen = std::collections::HashSet::new();
    let mut page: Vec<Contact> = Vec::new();
    let mut last = None;
    let mut more = false;
    for hit in hits {
        if !seen.insert(hit.row.id) {
            continue;
        }
        if page.len() as i64 == limit {
            more = true;
            break;
        }
        last = Some(Cursor {
            key: hit.k,
            id: hit.row.id,
        });
        page.push(Contact::from(hit.row));
    }
    Ok((page, if more { last } else { None }))
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
        .fetch_one(db.read())
        .await
}

/// The contact a picker field names: the suggestion picked (`picked`, its id), or
/// what was typed — an email, or a name (or the start of one) that exactly one
/// contact has. `Ok(Err(message))` says what to change.
pub async fn pick(
    db: &Db,
    picked: &str,
    typed: &str,
) -> Result<Result<Contact, String>, sqlx::Error> {
    if let Ok(id) = picked.trim().parse::<i64>()
        && let Some(c) = super::find(db, id).await?
    {
        return Ok(Ok(c));
    }
    let typed = typed.trim();
    if typed.contains('@') {
        return Ok(super::find_by_email(db, typed)
            .await?
            .ok_or_else(|| format!("No contact has the email {typed:?}.")));
    }
    let (found, _) = search(db, typed, None, 20).await?;
    let exact: Vec<&Contact> = found
        .iter()
        .filter(|c| c.name().eq_ignore_ascii_case(typed))
        .collect();
    Ok(match (found.len(), exact.as_slice()) {
        (0, _) => Err(format!(
            "No contact matches {typed:?}: type an email or a name and choose from the list."
        )),
        (1, _) => Ok(found[0].clone()),
        (_, [only]) => Ok((*only).clone()),
        (n, _) => Err(format!(
            "{n}{} contacts match {typed:?}: choose one from the list, or type the email.",
            if n == 20 { " or more" } else { "" }
        )),
    })
}

/// Most pages kept in the trail behind Previous.
const MAX_TRAIL: usize = 50;
/// Matches counted for a search before "or more".
const COUNT_MATCHES: i64 = 200;
/// Contacts counted before "or more".
const COUNT_ALL: i64 = 100_000;

/// The pages behind Previous, as [`page_link`] writes them: `id:key` entries, the
/// key percent-encoded (so it holds no `,`), joined with `,` — not a line feed,
/// which the input rule refuses in a query string.
pub fn parse_trail(raw: &str) -> Vec<Cursor> {
    raw.split(',')
        .filter_map(|entry| {
            let (id, key) = entry.split_once(':')?;
            let key = url::form_urlencoded::parse(format!("k={key}").as_bytes())
                .next()?
                .1
                .into_owned();
            Some(Cursor {
                key,
                id: id.parse().ok()?,
            })
        })
        .take(MAX_TRAIL)
        .collect()
}

pub fn page_link(q: &str, at: Option<&Cursor>, trail: &[Cursor]) -> String {
    let mut link = url::form_urlencoded::Serializer::new(String::new());
    link.append_pair("q", q);
    if let Some(c) = at {
        link.append_pair("after", &c.key)
            .append_pair("after_id", &c.id.to_string());
    }
    if !trail.is_empty() {
        let entries: Vec<String> = trail
            .iter()
            .map(|c| {
                let key: String = url::form_urlencoded::byte_serialize(c.key.as_bytes()).collect();
                format!("{}:{key}", c.id)
            })
            .collect();
        link.append_pair("trail", &entries.join(","));
    }
    link.finish()
}

/// How many contacts there are, or match `q`, in words — counted only so far.
pub async fn total(db: &crate::db::Db, q: &str) -> Result<String, sqlx::Error> {
    let fmt = |n: i64| crate::types::thousands(n);
    if q.trim().is_empty() {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT 1 FROM contacts LIMIT $1) t")
            .bind(COUNT_ALL + 1)
            .fetch_one(db.read())
            .await?;
        return Ok(match n {
            n if n > COUNT_ALL => format!("More than {} contacts", fmt(COUNT_ALL)),
            1 => "1 contact".into(),
            n => format!("{} contacts", fmt(n)),
        });
    }
    // Only ids, each branch up to the cap: a count reads no contact rows.
    let mut ids = std::collections::HashSet::new();
    for (key, first, prefix) in branches(q) {
        let sql = branch_sql("id", key, first.is_some(), false);
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
            .bind(prefix.clone())
            .bind(prefix_end(&prefix));
        if let Some(first) = first {
            query = query.bind(first);
        }
        ids.extend(query.bind(COUNT_MATCHES).fetch_all(db.read()).await?);
    }
    let n = (ids.len() as i64).min(COUNT_MATCHES);
    Ok(match n {
        n if n >= COUNT_MATCHES => format!("{} or more match", fmt(COUNT_MATCHES)),
        0 => "None match".into(),
        1 => "1 matches".into(),
        n => format!("{} match", fmt(n)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_behind_previous_survives_its_link_whatever_the_keys_hold() {
        let trail: Vec<Cursor> = ["ann@example.com", "a,b:c d", "ümlaut\u{1}x", ""]
            .iter()
            .enumerate()
            .map(|(i, k)| Cursor {
                key: k.to_string(),
                id: i as i64 + 1,
            })
            .collect();
        let link = page_link("q", None, &trail);
        assert!(!link.contains("%0A") && !link.contains('\n'), "{link}");
        let raw = url::form_urlencoded::parse(link.as_bytes())
            .find(|(k, _)| k == "trail")
            .unwrap()
            .1;
        assert!(!raw.chars().any(char::is_control), "{raw:?}");
        let back = parse_trail(&raw);
        assert_eq!(back.len(), trail.len());
        for (a, b) in back.iter().zip(&trail) {
            assert_eq!((a.id, a.key.as_str()), (b.id, b.key.as_str()));
        }
    }
}
