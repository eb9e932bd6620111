//! System users (staff): the store.

use std::fmt;

use crate::db::{Db, Tx, is_unique_violation};
use crate::types::{EmailAddress, Invalid, PersonName};

/// What a system user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    Admin,
    Marketer,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Marketer, Role::Admin];

    pub fn code(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Marketer => "marketer",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Marketer => "Marketer",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw.trim() {
            "admin" => Ok(Role::Admin),
            "marketer" => Ok(Role::Marketer),
            _ => Err(Invalid::new("Choose Admin or Marketer.")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    email: String,
    name: String,
    role: String,
    disabled: i64,
    password_hash: Option<String>,
    temp_hash: Option<String>,
    temp_expires_at: Option<i64>,
    temp_used_at: Option<i64>,
    created_at: i64,
}

/// A staff account. Hash fields hold argon2id PHC strings, never passwords.
#[derive(Debug, Clone)]
pub struct SystemUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub password_hash: Option<String>,
    pub temp_hash: Option<String>,
    pub temp_expires_at: Option<i64>,
    pub temp_used_at: Option<i64>,
    pub created_at: i64,
}

impl SystemUser {
    /// The temporary credential's hash, while it may still be used to sign in.
    pub fn usable_temp_hash(&self, now_ms: i64) -> Option<&str> {
        super::password::usable_temp(
            self.temp_hash.as_deref(),
            self.temp_expires_at,
            self.temp_used_at,
            now_ms,
        )
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl TryFrom<Row> for SystemUser {
    type Error = sqlx::Error;
    fn try_from(r: Row) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.id,
            role: Role::parse(&r.role).map_err(|e| sqlx::Error::Decode(e.0.into()))?,
            email: r.email,
            name: r.name,
            disabled: r.disabled != 0,
            password_hash: r.password_hash,
            temp_hash: r.temp_hash,
            temp_expires_at: r.temp_expires_at,
            temp_used_at: r.temp_used_at,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, email, name, role, disabled, password_hash, temp_hash, \
                       temp_expires_at, temp_used_at, created_at";

/// Why creating a user failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("A system user with this email already exists.")]
    Exists,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CreateError {
    /// A write's error: the address taken by another user, or the database's.
    fn from_write(e: sqlx::Error) -> Self {
        if is_unique_violation(&e) {
            Self::Exists
        } else {
            Self::Database(e)
        }
    }
}

pub async fn count(db: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM system_users")
        .fetch_one(db.read())
        .await
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<SystemUser>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM system_users WHERE email = $1");
    sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(email)
        .fetch_optional(db.read())
        .await?
        .map(SystemUser::try_from)
        .transpose()
}

pub async fn find(db: &Db, id: i64) -> Result<Option<SystemUser>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM system_users WHERE id = $1");
    sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db.read())
        .await?
        .map(SystemUser::try_from)
        .transpose()
}

pub async fn list(db: &Db) -> Result<Vec<SystemUser>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM system_users ORDER BY email");
    sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.read())
        .await?
        .into_iter()
        .map(SystemUser::try_from)
        .collect()
}

/// Creates a user whose only credential is a temporary password (its hash).
pub async fn create(
    tx: &mut Tx,
    email: &EmailAddress,
    name: &PersonName,
    role: Role,
    temp_hash: &str,
    temp_expires_at: i64,
    now_ms: i64,
) -> Result<i64, CreateError> {
    let id = sqlx::query_scalar(
        "INSERT INTO system_users (email, name, role, disabled, temp_hash, temp_expires_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 0, $4, $5, $6, $6) RETURNING id",
    )
    .bind(email.as_str())
    .bind(name.as_str())
    .bind(role.code())
    .bind(temp_hash)
    .bind(temp_expires_at)
    .bind(now_ms)
    .fetch_one(&mut **tx)
    .await
    .map_err(CreateError::from_write)?;
    Ok(id)
}

/// Gives the user a new temporary password (replacing an older one); the permanent
/// password keeps working until the temporary one is used.
pub async fn set_temp_password(
    tx: &mut Tx,
    id: i64,
    temp_hash: &str,
    expires_at: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE system_users SET temp_hash = $1, temp_expires_at = $2, temp_used_at = NULL, updated_at = $3 \
         WHERE id = $4",
    )
    .bind(temp_hash)
    .bind(expires_at)
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks the temporary password used, if it still was unused: it works once.
/// Returns whether this call was the one that used it.
pub async fn use_temp_password(db: &Db, id: i64, now_ms: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE system_users SET temp_used_at = $1, updated_at = $1 \
         WHERE id = $2 AND temp_used_at IS NULL AND temp_hash IS NOT NULL",
    )
    .bind(now_ms)
    .bind(id)
    .execute(db.write())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the permanent password and removes any temporary one.
pub async fn set_password(
    tx: &mut Tx,
    id: i64,
    hash: &str,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE system_users SET password_hash = $1, temp_hash = NULL, temp_expires_at = NULL, \
         temp_used_at = NULL, updated_at = $2 WHERE id = $3",
    )
    .bind(hash)
    .bind(now_ms)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A user's field that staff change one at a time.
enum Field<'a> {
    Role(Role),
    Disabled(bool),
    Name(&'a PersonName),
}

/// Changes one field of a user.
async fn set(tx: &mut Tx, id: i64, field: Field<'_>, now_ms: i64) -> Result<(), sqlx::Error> {
    let q = match field {
        Field::Role(role) => {
            sqlx::query("UPDATE system_users SET role = $1, updated_at = $2 WHERE id = $3")
                .bind(role.code())
        }
        Field::Disabled(disabled) => {
            sqlx::query("UPDATE system_users SET disabled = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(disabled))
        }
        Field::Name(name) => {
            sqlx::query("UPDATE system_users SET name = $1, updated_at = $2 WHERE id = $3")
                .bind(name.as_str().to_string())
        }
    };
    q.bind(now_ms).bind(id).execute(&mut **tx).await?;
    Ok(())
}

pub async fn set_role(tx: &mut Tx, id: i64, role: Role, now_ms: i64) -> Result<(), sqlx::Error> {
    set(tx, id, Field::Role(role), now_ms).await
}

pub async fn set_disabled(
    tx: &mut Tx,
    id: i64,
    disabled: bool,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    set(tx, id, Field::Disabled(disabled), now_ms).await
}

/// Changes a user's own name.
pub async fn set_name(
    tx: &mut Tx,
    id: i64,
    name: &PersonName,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    set(tx, id, Field::Name(name), now_ms).await
}

/// Changes a user's email from `from` to `to`; `Ok(false)` when the user's email
/// is no longer `from` (the link was used, or the address changed since).
pub async fn change_email(
    tx: &mut Tx,
    id: i64,
    from: &str,
    to: &EmailAddress,
    now_ms: i64,
) -> Result<bool, CreateError> {
    let changed = sqlx::query(
        "UPDATE system_users SET email = $1, updated_at = $2 WHERE id = $3 AND email = $4",
    )
    .bind(to.as_str())
    .bind(now_ms)
    .bind(id)
    .bind(from)
    .execute(&mut **tx)
    .await
    .map_err(CreateError::from_write)?;
    Ok(changed.rows_affected() == 1)
}

/// The addresses the user's test sends go to, as last used (empty: none kept).
pub async fn test_addresses(db: &Db, id: i64) -> Result<Vec<String>, sqlx::Error> {
    let kept: Option<String> =
        sqlx::query_scalar("SELECT test_addresses FROM system_users WHERE id = $1")
            .bind(id)
            .fetch_optional(db.read())
            .await?;
    Ok(kept
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// Remembers the addresses of the user's latest test send.
pub async fn set_test_addresses(
    tx: &mut Tx,
    id: i64,
    addresses: &[EmailAddress],
) -> Result<(), sqlx::Error> {
    let kept = addresses
        .iter()
        .map(EmailAddress::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    sqlx::query("UPDATE system_users SET test_addresses = $1 WHERE id = $2")
        .bind(kept)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// At most this many addresses get one test send.
pub const MAX_TEST_ADDRESSES: usize = 5;

/// Up to [`MAX_TEST_ADDRESSES`] addresses typed with commas, semicolons, spaces or
/// line breaks between them; repeats count once. The message names the first
/// address that is not one.
pub fn parse_test_addresses(raw: &str) -> Result<Vec<EmailAddress>, String> {
    let mut out: Vec<EmailAddress> = Vec::new();
    for part in raw
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let address = EmailAddress::parse(part).map_err(|_| {
            format!("\"{part}\" is not an email address; enter addresses like name@example.com, separated by commas.")
        })?;
        if !out.contains(&address) {
            out.push(address);
        }
    }
    match out.len() {
        0 => Err("Enter at least one email address.".into()),
        n if n > MAX_TEST_ADDRESSES => Err(format!(
            "A test goes to at most {MAX_TEST_ADDRESSES} addresses; you entered {n}."
        )),
        _ => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_addresses_are_a_short_list_of_real_addresses() {
        let ok =
            parse_test_addresses(" a@example.com, B@example.com;\nc@example.com a@example.com ")
                .unwrap();
        let shown: Vec<&str> = ok.iter().map(EmailAddress::as_str).collect();
        assert_eq!(shown, ["a@example.com", "b@example.com", "c@example.com"]);
        assert!(
            parse_test_addresses("")
                .unwrap_err()
                .contains("at least one")
        );
        let e = parse_test_addresses("a@example.com, nobody").unwrap_err();
        assert!(e.contains("\"nobody\""), "{e}");
        let six = (1..=6)
            .map(|i| format!("p{i}@example.com"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            parse_test_addresses(&six)
                .unwrap_err()
                .contains("at most 5")
        );
    }
}
