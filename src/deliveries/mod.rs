//! Deliveries: every email Herald sent (password emails, prepared messages,
//! reminders, test sends), to whom, for which run, contact and message, with its
//! Message-ID — and its later fate, as the mail system reported it (a bounce, a
//! complaint). A delivery is named by its *reference*, the random part of its
//! Message-ID (`<reference@domain>`), which its bounce address carries too
//! (`bounces+reference.tag@bounce-domain`, signed: see [`BounceAddresses`]).

use serde::Serialize;

use crate::db::Db;

mod addresses;
mod rates;

pub use addresses::*;
pub use rates::*;

/// What kind of email a delivery was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A new password, to a contact or a system user.
    Password,
    /// A prepared message.
    Message,
    /// The reminder before an automation ends, to staff.
    Reminder,
    /// A test send from the message editor.
    Test,
    /// A double opt-in confirmation, to a contact.
    Confirmation,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Password,
        Kind::Message,
        Kind::Reminder,
        Kind::Test,
        Kind::Confirmation,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Kind::Password => "password",
            Kind::Message => "message",
            Kind::Reminder => "reminder",
            Kind::Test => "test",
            Kind::Confirmation => "confirmation",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Password => "password email",
            Kind::Message => "prepared message",
            Kind::Reminder => "reminder",
            Kind::Test => "test send",
            Kind::Confirmation => "subscription confirmation",
        }
    }
}

/// What became of a delivery, as far as Herald heard. A stronger fate replaces a
/// weaker one (a complaint after a delay notice, say), never the other way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Handed to the mail server; nothing heard since.
    Sent,
    /// The mail system is still trying (a delay notice).
    Delayed,
    /// A temporary failure (4.x.x): a full mailbox, a server that is down.
    SoftBounce,
    /// A permanent failure (5.x.x): the mailbox does not exist.
    HardBounce,
    /// The recipient reported it as spam.
    Complained,
}

impl Fate {
    pub const ALL: [Fate; 5] = [
        Fate::Sent,
        Fate::Delayed,
        Fate::SoftBounce,
        Fate::HardBounce,
        Fate::Complained,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Fate::Sent => "sent",
            Fate::Delayed => "delayed",
            Fate::SoftBounce => "soft_bounce",
            Fate::HardBounce => "hard_bounce",
            Fate::Complained => "complained",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Fate::Sent => "sent",
            Fate::Delayed => "delayed",
            Fate::SoftBounce => "bounced (soft)",
            Fate::HardBounce => "bounced (hard)",
            Fate::Complained => "complained",
        }
    }

    /// The badge colour staff see.
    pub fn badge(self) -> &'static str {
        match self {
            Fate::Sent => "text-bg-success",
            Fate::Delayed => "text-bg-secondary",
            Fate::SoftBounce => "text-bg-warning",
            Fate::HardBounce | Fate::Complained => "text-bg-danger",
        }
    }
}

/// An email a run sent, as the run's completion records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub kind: Kind,
    /// The Message-ID it carried, `<reference@domain>`.
    pub smtp_message_id: String,
    pub address: String,
    pub contact_id: Option<i64>,
    /// The prepared message, for prepared messages.
    pub message_id: Option<i64>,
    /// The mail server's id for it, when its answer named one.
    pub queued_as: Option<String>,
    /// The targets of its tracked links (a JSON array), when it was tracked.
    pub links: Option<String>,
}

impl Sent {
    pub fn new(kind: Kind, smtp_message_id: String, address: &str) -> Self {
        Self {
            kind,
            smtp_message_id,
            address: address.trim().to_lowercase(),
            contact_id: None,
            message_id: None,
            queued_as: None,
            links: None,
        }
    }

    /// With the mail server's id for it, when its answer named one.
    pub fn queued_as(mut self, id: Option<String>) -> Self {
        self.queued_as = id;
        self
    }

    /// Tracked, with the targets of its links (in the order their tokens number them).
    pub fn tracked(mut self, links: &[String]) -> Self {
        self.links = Some(serde_json::to_string(links).expect("strings"));
        self
    }

    /// To the contact `contact_id`, when the email went to a contact.
    pub fn to_contact(mut self, contact_id: Option<i64>) -> Self {
        self.contact_id = contact_id;
        self
    }

    pub fn of_message(mut self, message_id: i64) -> Self {
        self.message_id = Some(message_id);
        self
    }

    /// The reference its Message-ID carries.
    pub fn reference(&self) -> &str {
        reference_of(&self.smtp_message_id).unwrap_or(&self.smtp_message_id)
    }
}

/// The reference of a Message-ID Herald made (`<reference@domain>`): lower-case
/// hex only, so a returned header that was changed on the way reads as nothing.
pub fn reference_of(message_id: &str) -> Option<&str> {
    let inner = message_id.trim().trim_start_matches('<');
    let (local, _) = inner.split_once('@')?;
    (local.len() == REFERENCE_BYTES * 2 && local.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(local)
}

/// Bytes in a reference (4 of time, 6 random): with the signature, a bounce
/// address stays within the 64 characters of a local part.
pub const REFERENCE_BYTES: usize = 10;

/// A fresh reference for an email about to be sent at `now_ms`: the second it
/// was made (so a report that comes back before its email is recorded can be
/// told from one about an email long forgotten), then random bytes.
pub fn new_reference_at(now_ms: i64) -> String {
    let seconds = (now_ms.div_euclid(1000) as u64 & 0xffff_ffff) as u32;
    format!(
        "{seconds:08x}{}",
        crate::types::random_hex(REFERENCE_BYTES - 4).to_ascii_lowercase()
    )
}

/// [`new_reference_at`] now.
pub fn new_reference() -> String {
    new_reference_at(jiff::Timestamp::now().as_millisecond())
}

/// When the reference was made (to the second), as milliseconds.
pub fn reference_made_at(reference: &str) -> Option<i64> {
    let seconds = u32::from_str_radix(reference.get(..8)?, 16).ok()?;
    Some(i64::from(seconds) * 1000)
}

/// Columns of one delivery in [`insert_sql`], after the shared time.
pub const INSERT_COLUMNS: usize = 9;

/// The INSERT of `rows` deliveries, all sent at the time bound as `$at`, each
/// delivery's values bound in turn from `$first` on (see [`bind`]). A delivery
/// already stored (an outcome written twice) is left as it is.
pub fn insert_sql(rows: usize, at: usize, first: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let k = first + INSERT_COLUMNS * r;
            let cells: Vec<String> = (k..k + INSERT_COLUMNS).map(|i| format!("${i}")).collect();
            // The automation, from the run (the third value).
            let run = k + 2;
            format!(
                "({}, (SELECT automation_id FROM job_runs WHERE id = ${run}), ${at})",
                cells.join(", ")
            )
        })
        .collect();
    format!(
        "INSERT INTO deliveries (reference, kind, run_id, contact_id, message_id, address, smtp_message_id, queued_as, links, automation_id, sent_at) \
         VALUES {} ON CONFLICT (reference) DO NOTHING",
        values.join(", ")
    )
}

/// Binds one delivery of [`insert_sql`], sent by `run` (none for a test send).
pub fn bind<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    run: Option<i64>,
    s: &Sent,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(s.reference().to_string())
        .bind(s.kind.code())
        .bind(run)
        .bind(s.contact_id)
        .bind(s.message_id)
        .bind(s.address.clone())
        .bind(s.smtp_message_id.clone())
        .bind(s.queued_as.clone())
        .bind(s.links.clone())
}

/// Records emails sent outside a run (test sends).
pub async fn record(db: &Db, now_ms: i64, sent: &[Sent]) -> Result<(), sqlx::Error> {
    if sent.is_empty() {
        return Ok(());
    }
    let sql = insert_sql(sent.len(), 1, 2);
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now_ms);
    for s in sent {
        q = bind(q, None, s);
    }
    q.execute(db.write()).await?;
    Ok(())
}

/// One delivery as pages and the API show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    #[serde(skip)]
    pub reference: String,
    #[sqlx(try_from = "String")]
    pub kind: KindCode,
    pub run_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub message_id: Option<i64>,
    /// The prepared message's name (none for other emails, or a deleted message).
    pub message_name: Option<String>,
    pub address: String,
    pub smtp_message_id: String,
    pub sent_at: i64,
    #[sqlx(try_from = "String")]
    pub fate: FateCode,
    pub fate_at: Option<i64>,
    /// What the mail system said ("5.1.1 user unknown").
    pub fate_detail: String,
}

/// A stored kind (an unknown one reads as a test send, never an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct KindCode(pub Kind);

impl From<String> for KindCode {
    fn from(s: String) -> Self {
        KindCode(Kind::from_code(&s).unwrap_or(Kind::Test))
    }
}

/// A stored fate (an unknown one reads as sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct FateCode(pub Fate);

impl From<String> for FateCode {
    fn from(s: String) -> Self {
        FateCode(Fate::from_code(&s).unwrap_or(Fate::Sent))
    }
}

impl Delivery {
    pub fn fate(&self) -> Fate {
        self.fate.0
    }

    pub fn kind(&self) -> Kind {
        self.kind.0
    }

    /// What was sent, in words: `prepared message "Offer"`, `password email`.
    pub fn what(&self) -> String {
        match &self.message_name {
            Some(name) if self.kind() == Kind::Message => format!("prepared message \"{name}\""),
            Some(name) if self.kind() == Kind::Test => format!("test of \"{name}\""),
            _ => self.kind().label().to_string(),
        }
    }

    /// When it was sent, in `zone`.
    pub fn sent_in(&self, zone: &str) -> String {
        crate::clock::format_in(self.sent_at, zone)
    }
}

/// The SELECT of deliveries (as `d`, with their message's name), then `$rest`.
macro_rules! select_deliveries {
    ($rest:literal) => {
        concat!(
            "SELECT d.id, d.reference, d.kind, d.run_id, d.contact_id, d.message_id, \
             m.name AS message_name, d.address, d.smtp_message_id, d.sent_at, d.fate, \
             d.fate_at, d.fate_detail FROM deliveries d LEFT JOIN messages m ON m.id = d.message_id ",
            $rest
        )
    };
}

/// The deliveries of run `run`, first sent first.
pub async fn of_run(db: &Db, run: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(select_deliveries!("WHERE d.run_id = $1 ORDER BY d.id"))
        .bind(run)
        .fetch_all(db.read())
        .await
}

/// The deliveries of the runs `runs`, by run.
pub async fn of_runs(
    db: &Db,
    runs: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<Delivery>>, sqlx::Error> {
    let mut out: std::collections::HashMap<i64, Vec<Delivery>> = Default::default();
    if runs.is_empty() {
        return Ok(out);
    }
    let list: Vec<String> = runs.iter().map(i64::to_string).collect();
    let sql = format!(
        "{} WHERE d.run_id IN ({}) ORDER BY d.id",
        select_deliveries!(""),
        list.join(", ")
    );
    let rows: Vec<Delivery> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(db.read())
        .await?;
    for d in rows {
        out.entry(d.run_id.unwrap_or_default()).or_default().push(d);
    }
    Ok(out)
}

/// The latest `limit` deliveries to contact `contact`, newest first.
pub async fn of_contact(db: &Db, contact: i64, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    sqlx::query_as(select_deliveries!(
        "WHERE d.contact_id = $1 ORDER BY d.sent_at DESC, d.id DESC LIMIT $2"
    ))
    .bind(contact)
    .bind(limit)
    .fetch_all(db.read())
    .await
}

/// The delivery named by `reference`.
pub async fn by_reference(db: &Db, reference: &str) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(select_deliveries!("WHERE d.reference = $1"))
        .bind(reference)
        .fetch_optional(db.read())
        .await
}

/// A tracked delivery, as a click or open finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TrackedDelivery {
    pub id: i64,
    pub message_id: Option<i64>,
    /// The automation whose run sent it (none for a test send, or a pruned run).
    pub automation_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub sent_at: i64,
    /// The targets of its links, read once from their JSON array.
    #[sqlx(try_from = "String")]
    pub links: Targets,
    /// 1 when its contact asked that their opens and clicks are not kept with them.
    pub untracked: i64,
}

/// The targets of a tracked email's links, in the order their tokens number them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets(pub Vec<String>);

impl From<String> for Targets {
    /// Reads the stored JSON array (none for anything else).
    fn from(json: String) -> Self {
        Self(serde_json::from_str(&json).unwrap_or_default())
    }
}

impl TrackedDelivery {
    /// The target of its link at `position`.
    pub fn target(&self, position: usize) -> Option<String> {
        self.links.0.get(position).cloned()
    }
}

/// The tracked delivery `reference` names (none when it was not tracked).
pub async fn tracked(db: &Db, reference: &str) -> Result<Option<TrackedDelivery>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, d.message_id, d.automation_id, d.contact_id, d.sent_at, d.links, \
         COALESCE(c.untracked, 0) AS untracked \
         FROM deliveries d LEFT JOIN contacts c ON c.id = d.contact_id \
         WHERE d.reference = $1 AND d.links IS NOT NULL",
    )
    .bind(reference)
    .fetch_optional(db.read())
    .await
}

/// The delivery the mail server named `queued_as` (the latest, should two
/// servers have used one id).
pub async fn by_queued_as(db: &Db, queued_as: &str) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(select_deliveries!(
        "WHERE d.queued_as = $1 ORDER BY d.sent_at DESC, d.id DESC LIMIT 1"
    ))
    .bind(queued_as)
    .fetch_optional(db.read())
    .await
}

/// The latest delivery to `address` (any case).
pub async fn latest_to(db: &Db, address: &str) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(select_deliveries!(
        "WHERE d.address = $1 ORDER BY d.sent_at DESC, d.id DESC LIMIT 1"
    ))
    .bind(address.trim().to_lowercase())
    .fetch_optional(db.read())
    .await
}

/// The fates of the deliveries to `address` sent from `since` to `until`, newest
/// first: what the soft-bounce rule counts.
pub async fn fates_to(
    conn: &mut sqlx::AnyConnection,
    address: &str,
    since: i64,
    until: i64,
) -> Result<Vec<Fate>, sqlx::Error> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT fate FROM deliveries WHERE address = $1 AND sent_at >= $2 AND sent_at <= $3 \
         ORDER BY sent_at DESC, id DESC LIMIT 100",
    )
    .bind(address.trim().to_lowercase())
    .bind(since)
    .bind(until)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|f| Fate::from_code(f).unwrap_or(Fate::Sent))
        .collect())
}

/// Gives delivery `id` the fate `fate` (with what the mail system said), unless
/// it has a stronger one already. Returns whether it changed.
pub async fn set_fate(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    fate: Fate,
    at: i64,
    detail: &str,
) -> Result<bool, sqlx::Error> {
    let weaker: Vec<&str> = Fate::ALL
        .into_iter()
        .filter(|f| *f < fate)
        .map(Fate::code)
        .collect();
    if weaker.is_empty() {
        return Ok(false);
    }
    let list: Vec<String> = weaker.iter().map(|c| format!("'{c}'")).collect();
    let sql = format!(
        "UPDATE deliveries SET fate = $1, fate_at = $2, fate_detail = $3 WHERE id = $4 AND fate IN ({})",
        list.join(", ")
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(fate.code())
        .bind(at)
        .bind(detail.chars().take(500).collect::<String>())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes deliveries sent before `before`, a batch at a time.
pub async fn prune(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    crate::db::delete_in_batches(
        db,
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE sent_at < $1 LIMIT $2)",
        before,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_reads_back_from_its_message_id_only() {
        let r = new_reference();
        assert_eq!(
            reference_of(&format!("<{r}@example.com>")),
            Some(r.as_str())
        );
        assert_eq!(reference_of("<CAF=abc@mail.gmail.com>"), None);
        assert_eq!(reference_of(""), None);
    }

    #[test]
    fn a_reference_says_when_it_was_made() {
        let at = 1_796_000_000_123;
        let r = new_reference_at(at);
        assert_eq!(r.len(), REFERENCE_BYTES * 2);
        assert_eq!(reference_made_at(&r), Some(1_796_000_000_000));
        assert_ne!(new_reference_at(at), r, "random after the time");
    }

    #[test]
    fn a_fate_only_gets_stronger() {
        assert!(Fate::Complained > Fate::HardBounce);
        assert!(Fate::HardBounce > Fate::SoftBounce);
        assert!(Fate::SoftBounce > Fate::Delayed);
        assert!(Fate::Delayed > Fate::Sent);
        for f in Fate::ALL {
            assert_eq!(Fate::from_code(f.code()), Some(f));
        }
    }
}
