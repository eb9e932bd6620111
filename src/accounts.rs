//! System users' accounts: one created with a fresh temporary password (audited,
//! with its event), and the first admin at the first start.

use crate::audit::{self, Action, Actor};
use crate::auth::password::{self, PasswordHasher, Plaintext, Priority, TEMP_PASSWORD_LENGTH};
use crate::auth::users::{self, CreateError, Role};
use crate::clock::Clock;
use crate::db::Db;
use crate::events::catalogue::{EventType, NewEvent};
use crate::settings::Settings;
use crate::types::{EmailAddress, PersonName};

/// The admin created at the first start, with the temporary password to print once.
pub struct FirstAdmin {
    pub email: String,
    pub password: Plaintext,
}

/// A new system user as entered.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: EmailAddress,
    pub name: PersonName,
    pub role: Role,
}

/// Creates a system user with a fresh temporary password (returned once, to show
/// or print; only its hash is stored) and audits it, in one transaction.
pub async fn create_user(
    db: &Db,
    hasher: &PasswordHasher,
    now_ms: i64,
    new: &NewUser,
    actor: &Actor,
    ip: &str,
) -> Result<(i64, Plaintext), CreateError> {
    let (password, hash, expires_at) = temporary_password(db, hasher, now_ms).await?;
    let mut tx = db.begin().await?;
    let id = users::create(
        &mut tx, &new.email, &new.name, new.role, &hash, expires_at, now_ms,
    )
    .await?;
    audit::record(
        &mut tx,
        now_ms,
        audit::Entry {
            actor,
            action: Action::UserCreated,
            target: new.email.as_str(),
            detail: new.role.code(),
            ip,
        },
    )
    .await?;
    let event = NewEvent {
        kind: EventType::SystemUserCreated,
        contact_id: None,
        system_user_id: Some(id),
        group_id: None,
        params: serde_json::json!({ "role": new.role.code() }),
    };
    crate::intake::events::record(&mut tx, now_ms, &event).await?;
    db.commit(tx).await?;
    Ok((id, password))
}

/// A fresh temporary password, its hash and its expiry (lifetime from settings).
pub async fn temporary_password(
    db: &Db,
    hasher: &PasswordHasher,
    now_ms: i64,
) -> anyhow::Result<(Plaintext, String, i64)> {
    let hours = Settings::load(db).await?.temp_password_lifetime_hours;
    let password = password::generate(TEMP_PASSWORD_LENGTH);
    let hash = hasher.hash(&password, Priority::Interactive).await?;
    Ok((password, hash, now_ms + hours * 3_600_000))
}

/// On the first start (no system user at all) creates the admin `email`.
pub async fn bootstrap_first_admin(
    db: &Db,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    email: &str,
) -> anyhow::Result<Option<FirstAdmin>> {
    if users::count(db).await? > 0 {
        return Ok(None);
    }
    let new = NewUser {
        email: EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("admin_email: {e}"))?,
        name: PersonName::parse("Administrator").expect("valid name"),
        role: Role::Admin,
    };
    match create_user(
        db,
        hasher,
        clock.now_ms(),
        &new,
        &Actor::named("system (first start)"),
        "",
    )
    .await
    {
        Ok((_, password)) => Ok(Some(FirstAdmin {
            email: new.email.to_string(),
            password,
        })),
        // Another instance created it at the same moment.
        Err(CreateError::Exists) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
