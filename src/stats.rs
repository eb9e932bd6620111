//! The numbers a marketer reads, per prepared message and per automation: emails
//! sent, delivered (sent and not bounced), bounced, complained; opens and clicks
//! (people's, all and unique — machines' apart); the rates; per link; per day.
//! Sent, bounced and complained are counted from the emails' records, opens and
//! clicks from the roll-ups written in the transaction that decided them.

use serde::Serialize;

use crate::db::Db;

/// The ranges a reader may choose, in days.
pub const RANGES: [usize; 4] = [7, 30, 90, 365];

/// What the figures are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Message(i64),
    Automation(i64),
}

/// The rows counted: a scope's, or every email's (the dashboard).
#[derive(Debug, Clone, Copy)]
enum Of {
    Scope(Scope),
    All,
}

impl Of {
    /// The condition on a row (of `table.` when given) with the scope's id as `$1`.
    fn filter(self, table: &str) -> String {
        match self {
            Of::Scope(Scope::Message(_)) => format!("{table}message_id = $1"),
            Of::Scope(Scope::Automation(_)) => format!("{table}automation_id = $1"),
            Of::All => "$1 = 0".into(),
        }
    }

    fn id(self) -> i64 {
        match self {
            Of::Scope(Scope::Message(id) | Scope::Automation(id)) => id,
            Of::All => 0,
        }
    }
}

impl Scope {
    fn filter(self, table: &str) -> String {
        Of::Scope(self).filter(table)
    }

    /// The message's or automation's id.
    pub fn id(self) -> i64 {
        Of::Scope(self).id()
    }

    /// "message" or "automation".
    pub fn noun(self) -> &'static str {
        match self {
            Scope::Message(_) => "message",
            Scope::Automation(_) => "automation",
        }
    }
}

/// Every email's figures from `since` to `until` (the dashboard's).
pub async fn all_figures(db: &Db, since: i64, until: i64) -> Result<Figures, sqlx::Error> {
    figures_of(db, Of::All, since, until).await
}

/// The figures of a message or automation over a time range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    /// Emails sent (test sends left out).
    pub sent: i64,
    /// Sent and not bounced.
    pub delivered: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    /// People's opens, all of them.
    pub opens: i64,
    /// Emails opened at least once by a person.
    pub unique_opens: i64,
    /// Opens by machines (image proxies, within 2 s of the send), left out above.
    pub machine_opens: i64,
    pub clicks: i64,
    /// Links clicked at least once per email by a person.
    pub unique_clicks: i64,
    /// Clicks by machines (link scanners, HEAD, bursts, within 2 s of the send).
    pub machine_clicks: i64,
    /// Unsubscribes through the emails' links (each email's first).
    pub unsubscribes: i64,
}

impl Figures {
    /// Unique opens of the delivered emails, in percent.
    pub fn open_rate(&self) -> f64 {
        ratio(self.unique_opens, self.delivered)
    }

    /// Unique clicks of the delivered emails, in percent.
    pub fn click_rate(&self) -> f64 {
        ratio(self.unique_clicks, self.delivered)
    }

    /// Unique clicks of the unique opens, in percent.
    pub fn click_to_open_rate(&self) -> f64 {
        ratio(self.unique_clicks, self.unique_opens)
    }
}

fn ratio(n: i64, of: i64) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / of as f64).round() / 10.0
    }
}

/// The figures of `scope` for emails sent, and opens and clicks made, from
/// `since` to `until` (milliseconds).
pub async fn figures(
    db: &Db,
    scope: Scope,
    since: i64,
    until: i64,
) -> Result<Figures, sqlx::Error> {
    figures_of(db, Of::Scope(scope), since, until).await
}

async fn figures_of(db: &Db, scope: Of, since: i64, until: i64) -> Result<Figures, sqlx::Error> {
    let filter = scope.filter("");
    let columns = [
        "sent",
        "hard_bounces",
        "soft_bounces",
        "complaints",
        "unsubscribes",
        "opens",
        "unique_opens",
        "machine_opens",
        "clicks",
        "unique_clicks",
        "machine_clicks",
    ];
    let sums: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)"))
        .collect();
    let sql = format!(
        "SELECT {} FROM engagement_hourly WHERE {filter} AND hour >= $2 AND hour < $3",
        sums.join(", ")
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(scope.id())
        .bind(since - since.rem_euclid(HOUR_MS))
        .bind(until)
        .fetch_one(db.read())
        .await?;
    use sqlx::Row;
    let n = |i: usize| row.try_get::<i64, _>(i);
    let (sent, hard_bounces, soft_bounces, complaints) = (n(0)?, n(1)?, n(2)?, n(3)?);
    let (unsubscribes, opens, unique_opens, machine_opens) = (n(4)?, n(5)?, n(6)?, n(7)?);
    let (clicks, unique_clicks, machine_clicks) = (n(8)?, n(9)?, n(10)?);
    Ok(Figures {
        sent,
        delivered: sent - hard_bounces - soft_bounces,
        hard_bounces,
        soft_bounces,
        complaints,
        opens,
        unique_opens,
        machine_opens,
        clicks,
        unique_clicks,
        machine_clicks,
        unsubscribes,
    })
}

const HOUR_MS: i64 = 3_600_000;

/// One link's clicks (since the message was first sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LinkClicks {
    pub target: String,
    pub clicks: i64,
    pub unique_clicks: i64,
    pub machine_clicks: i64,
}

/// The links of `scope` that were clicked, most clicked first.
pub async fn links(db: &Db, scope: Scope) -> Result<Vec<LinkClicks>, sqlx::Error> {
    let sql = format!(
        "SELECT target, CAST(SUM(clicks) AS BIGINT) AS clicks, \
         CAST(SUM(unique_clicks) AS BIGINT) AS unique_clicks, \
         CAST(SUM(machine_clicks) AS BIGINT) AS machine_clicks \
         FROM link_clicks WHERE {} GROUP BY target \
         ORDER BY unique_clicks DESC, clicks DESC, target LIMIT 200",
        scope.filter("")
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.id())
        .fetch_all(db.read())
        .await
}

/// Per hour from `since`: (hour number, emails sent, people's unique opens,
/// people's unique clicks).
pub async fn per_hour(
    db: &Db,
    scope: Scope,
    since: i64,
) -> Result<Vec<(i64, i64, i64, i64)>, sqlx::Error> {
    let filter = scope.filter("");
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT hour / 3600000, CAST(SUM(sent) AS BIGINT), CAST(SUM(unique_opens) AS BIGINT), \
         CAST(SUM(unique_clicks) AS BIGINT) FROM engagement_hourly WHERE {filter} AND hour >= $2 \
         GROUP BY hour ORDER BY hour"
    )))
    .bind(scope.id())
    .bind(since - since.rem_euclid(HOUR_MS))
    .fetch_all(db.read())
    .await
}

/// One day of a report, in the reader's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// "Mon 7 Dec", for charts.
    #[serde(skip)]
    pub label: String,
    pub sent: i64,
    pub unique_opens: i64,
    pub unique_clicks: i64,
}

/// The figures of the last `days` days (today included) in `zone`, with each day.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// Where the first day starts and the last ends (milliseconds).
    pub since: i64,
    pub until: i64,
    pub figures: Figures,
    pub days: Vec<Day>,
    /// Every link clicked since the first email (not only in these days).
    pub links: Vec<LinkClicks>,
}

/// The report of `scope` for the last `days` days at `now_ms` in `zone`.
pub async fn report(
    db: &Db,
    scope: Scope,
    now_ms: i64,
    days: usize,
    zone: &jiff::tz::TimeZone,
) -> Result<Report, sqlx::Error> {
    let starts = crate::clock::day_starts(now_ms, zone, days);
    let (since, until) = (starts[0], starts[days]);
    let mut out: Vec<Day> = starts[..days]
        .iter()
        .map(|ms| Day {
            date: jiff::Timestamp::from_millisecond(*ms)
                .map(|t| t.to_zoned(zone.clone()).date().to_string())
                .unwrap_or_default(),
            label: crate::clock::day_label(*ms, zone),
            sent: 0,
            unique_opens: 0,
            unique_clicks: 0,
        })
        .collect();
    for (hour, sent, opens, clicks) in per_hour(db, scope, since).await? {
        let at = hour * HOUR_MS;
        if let Some(d) = (0..days).find(|&i| starts[i] <= at && at < starts[i + 1]) {
            out[d].sent += sent;
            out[d].unique_opens += opens;
            out[d].unique_clicks += clicks;
        }
    }
    Ok(Report {
        since,
        until,
        figures: figures(db, scope, since, until).await?,
        days: out,
        links: links(db, scope).await?,
    })
}

/// One person's click, for "who clicked what".
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Clicked {
    pub at: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub target: String,
}

/// The people's clicks of `scope` kept with their contact, oldest first (at most
/// `limit`).
pub async fn who_clicked(db: &Db, scope: Scope, limit: i64) -> Result<Vec<Clicked>, sqlx::Error> {
    let sql = format!(
        "SELECT k.at, c.email, c.first_name, c.last_name, k.target FROM clicks k \
         JOIN contacts c ON c.id = k.contact_id \
         WHERE {} AND k.machine = '' AND k.decided = 1 ORDER BY k.at, k.id LIMIT $2",
        scope.filter("k.")
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(scope.id())
        .bind(limit)
        .fetch_all(db.read())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_shares_of_what_was_delivered_and_opened() {
        let f = Figures {
            sent: 10,
            delivered: 8,
            unique_opens: 4,
            unique_clicks: 1,
            ..Figures::default()
        };
        assert_eq!(f.open_rate(), 50.0);
        assert_eq!(f.click_rate(), 12.5);
        assert_eq!(f.click_to_open_rate(), 25.0);
        assert_eq!(Figures::default().open_rate(), 0.0);
    }
}
