//! The contact search behind the list and the picker: a prefix of the email, the
//! first or the last name, each an index range scan in key order that stops after
//! the page, merged by the matched text — fast at a million contacts. After the
//! prefix matches come the contacts whose email or name holds the text further
//! in ("mueller" finds ben.mueller@…), oldest first, from a trigram index (FTS5
//! on SQLite, pg_trgm on PostgreSQL).

use serde::{Deserialize, Serialize};

use super::{COLUMNS, Contact, Row, search_key};
use crate::db::{Backend, Db};

/// Where a page of search results ends: the matched key and the contact id; or,
/// among the matches inside words (`inner`), the contact id alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub key: String,
    pub id: i64,
    #[serde(default)]
    pub inner: bool,
}

impl Cursor {
    fn prefix(key: String, id: i64) -> Self {
        Self {
            key,
            id,
            inner: false,
        }
    }

    fn inner(id: i64) -> Self {
        Self {
            key: String::new(),
            id,
            inner: true,
        }
    }
}

/// The shortest text searched inside words (a trigram index needs three).
const MIN_INNER_CHARS: usize = 3;

/// The text to find inside words, if `query` asks for it: one word of at least
/// three characters.
fn inner_text(query: &str) -> Option<String> {
    let q = search_key(query);
    (!q.contains(' ') && q.chars().count() >= MIN_INNER_CHARS).then_some(q)
}

/// Contacts (`columns`) holding `$1` inside their email or name but starting with
/// it in none of them (those are the prefix matches), with an id above `$2`, by
/// id. Placeholders: `$1` the text (an FTS5 phrase / a LIKE pattern), `$2` the
/// id, `$3`/`$4` the prefix range, `$5` the limit.
fn inner_sql(backend: Backend, columns: &str) -> String {
    let not_prefix = "NOT (email >= $3 AND email < $4) AND NOT (first_key >= $3 AND first_key < $4) \
                      AND NOT (last_key >= $3 AND last_key < $4)";
    match backend {
        // The FTS5 table hands out rowids in order: the LIMIT stops the scan.
        Backend::Sqlite => format!(
            "SELECT {columns} FROM contacts WHERE id IN (SELECT rowid FROM contacts_words \
             WHERE contacts_words MATCH $1 AND rowid > $2 AND {not_prefix} ORDER BY rowid LIMIT $5) \
             ORDER BY id"
        ),
        Backend::Postgres => format!(
            "SELECT {columns} FROM contacts WHERE (email || ' ' || first_key || ' ' || last_key) LIKE $1 \
             AND id > $2 AND {not_prefix} ORDER BY id LIMIT $5"
        ),
    }
}

/// `text` as the engine's inner-word pattern: an FTS5 phrase, or a LIKE pattern.
fn inner_pattern(backend: Backend, text: &str) -> String {
    match backend {
        Backend::Sqlite => format!("\"{}\"", text.replace('"', "\"\"")),
        Backend::Postgres => contains_pattern(text),
    }
}

/// A LIKE pattern matching text that holds `text`, its wildcards escaped with `\`
/// (PostgreSQL's default escape; SQLite is told with `ESCAPE '\'`).
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// The members of group `group_id` whose email or name holds `query` (all of
/// them for an empty query), oldest contact first, after contact `after_id`. Read
/// in the membership key's order, so a page stops early — except for a rare
/// text in a very large group, which reads the members until the page is full.
pub async fn search_in_group(
    db: &Db,
    group_id: i64,
    query: &str,
    after_id: i64,
    limit: i64,
) -> Result<(Vec<Contact>, Option<Cursor>), sqlx::Error> {
    let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("c.{c}")).collect();
    let sql = format!(
        "SELECT {} FROM group_members m JOIN contacts c ON c.id = m.contact_id \
         WHERE m.group_id = $1 AND m.contact_id > $2 \
         AND (c.email || ' ' || c.first_key || ' ' || c.last_key) LIKE $3 ESCAPE '\\' \
         ORDER BY m.contact_id LIMIT $4",
        columns.join(", ")
    );
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(group_id)
        .bind(after_id)
        .bind(contains_pattern(&search_key(query)))
        .bind(limit + 1)
        .fetch_all(db.read())
        .await?;
    Ok(id_page(rows, after_id, limit))
}

/// A page of `limit` contacts from `rows` (fetched with one more, to tell whether
/// there is a next page) in id order, and the cursor after it.
fn id_page(rows: Vec<Row>, after_id: i64, limit: i64) -> (Vec<Contact>, Option<Cursor>) {
    let more = rows.len() as i64 > limit;
    let page: Vec<Contact> = rows
        .into_iter()
        .take(limit.max(0) as usize)
        .map(Contact::from)
        .collect();
    let next = more.then(|| Cursor::inner(page.last().map_or(after_id, |c| c.id)));
    (page, next)
}

/// "200 or more match", "None match", "1 matches", "12 match".
fn matches_text(n: i64) -> String {
    match n.min(COUNT_MATCHES) {
        n if n >= COUNT_MATCHES => {
            format!("{} or more match", crate::types::thousands(COUNT_MATCHES))
        }
        0 => "None match".into(),
        1 => "1 matches".into(),
        n => format!("{} match", crate::types::thousands(n)),
    }
}

/// How many members `group_id` has ("1,204 members"), or — with a query — how
/// many of them match it, in words, counted up to 200.
pub async fn total_in_group(db: &Db, group_id: i64, query: &str) -> Result<String, sqlx::Error> {
    if query.trim().is_empty() {
        let n = super::groups::find(db, group_id)
            .await?
            .map_or(0, |g| g.members);
        let plural = if n == 1 { "" } else { "s" };
        return Ok(format!("{} member{plural}", crate::types::thousands(n)));
    }
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM group_members m JOIN contacts c ON c.id = m.contact_id \
         WHERE m.group_id = $1 AND (c.email || ' ' || c.first_key || ' ' || c.last_key) LIKE $2 ESCAPE '\\' \
         LIMIT $3) t",
    )
    .bind(group_id)
    .bind(contains_pattern(&search_key(query)))
    .bind(COUNT_MATCHES)
    .fetch_one(db.read())
    .await?;
    Ok(matches_text(n))
}

/// The inner-word matches of `text` after contact `after_id`, at most `limit`.
async fn inner_matches<T>(
    db: &Db,
    columns: &str,
    text: &str,
    after_id: i64,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: Send + Unpin + for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
{
    sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(inner_sql(db.backend, columns)))
        .bind(inner_pattern(db.backend, text))
        .bind(after_id)
        .bind(text.to_string())
        .bind(prefix_end(text))
        .bind(limit)
        .fetch_all(db.read())
        .await
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
/// ordered by the matched text; then, for one word of three characters or more,
/// those holding it further inside, oldest first. With an empty query, all
/// contacts by email. Returns a page and the cursor of the next page, if any.
pub async fn search(
    db: &Db,
    query: &str,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<(Vec<Contact>, Option<Cursor>), sqlx::Error> {
    let (mut page, inner_after) = match after {
        Some(c) if c.inner => (Vec::new(), c.id),
        _ => match prefix_search(db, query, after, limit).await? {
            (page, Some(next)) => return Ok((page, Some(next))),
            (page, None) => (page, 0),
        },
    };
    let Some(text) = inner_text(query) else {
        return Ok((page, None));
    };
    let room = limit - page.len() as i64;
    let rows: Vec<Row> = inner_matches(db, COLUMNS, &text, inner_after, room + 1).await?;
    // A full page of prefix matches: the next page starts the inner matches.
    let (taken, next) = id_page(rows, inner_after, room);
    page.extend(taken);
    Ok((page, next))
}

/// The prefix part of [`search`].
async fn prefix_search(
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
        last = Some(Cursor::prefix(hit.k, hit.row.id));
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
            if let Some(id) = entry.strip_prefix('*') {
                return Some(Cursor::inner(id.parse().ok()?));
            }
            let (id, key) = entry.split_once(':')?;
            let key = url::form_urlencoded::parse(format!("k={key}").as_bytes())
                .next()?
                .1
                .into_owned();
            Some(Cursor::prefix(key, id.parse().ok()?))
        })
        .take(MAX_TRAIL)
        .collect()
}

pub fn page_link(q: &str, group: Option<i64>, at: Option<&Cursor>, trail: &[Cursor]) -> String {
    let mut link = url::form_urlencoded::Serializer::new(String::new());
    link.append_pair("q", q);
    if let Some(g) = group {
        link.append_pair("group", &g.to_string());
    }
    if let Some(c) = at {
        link.append_pair("after", &c.key)
            .append_pair("after_id", &c.id.to_string());
        if c.inner {
            link.append_pair("inner", "1");
        }
    }
    if !trail.is_empty() {
        let entries: Vec<String> = trail
            .iter()
            .map(|c| {
                if c.inner {
                    return format!("*{}", c.id);
                }
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
    if let Some(text) = inner_text(q)
        && (ids.len() as i64) < COUNT_MATCHES
    {
        let inner: Vec<(i64,)> = inner_matches(db, "id", &text, 0, COUNT_MATCHES).await?;
        ids.extend(inner.into_iter().map(|(id,)| id));
    }
    Ok(matches_text(ids.len() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_behind_previous_survives_its_link_whatever_the_keys_hold() {
        let mut trail: Vec<Cursor> = ["ann@example.com", "a,b:c d", "ümlaut\u{1}x", "*1", ""]
            .iter()
            .enumerate()
            .map(|(i, k)| Cursor::prefix(k.to_string(), i as i64 + 1))
            .collect();
        trail.push(Cursor::inner(77));
        let link = page_link("q", Some(3), None, &trail);
        assert!(!link.contains("%0A") && !link.contains('\n'), "{link}");
        let raw = url::form_urlencoded::parse(link.as_bytes())
            .find(|(k, _)| k == "trail")
            .unwrap()
            .1;
        assert!(!raw.chars().any(char::is_control), "{raw:?}");
        let back = parse_trail(&raw);
        assert_eq!(back.len(), trail.len());
        assert_eq!(back, trail);
    }
}
