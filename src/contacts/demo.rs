//! `herald seed-demo --contacts N`: synthetic contacts, groups and memberships, so
//! anyone can reproduce the search and import figures in BENCHMARKS.md.

use std::time::Instant;

use super::search_key;
use crate::db::Db;
use crate::db::placeholders;

const FIRST: [&str; 24] = [
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Karla",
    "Leon", "Mia", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Samuel", "Tara", "Ulrich", "Vera",
    "William", "Zoe",
];
const LAST: [&str; 24] = [
    "Adler", "Becker", "Cruz", "Dietrich", "Engel", "Fischer", "Garcia", "Hoffmann", "Ivanova",
    "Jansen", "Keller", "Lange", "Meyer", "Novak", "Olsen", "Peters", "Quast", "Richter", "Schulz",
    "Tanaka", "Ueda", "Vogel", "Weber", "Young",
];
const GROUPS: [(&str, &str, bool); 5] = [
    ("Weekly newsletter", "News and offers every Monday", true),
    ("Product updates", "When something new ships", true),
    ("Events", "Invitations to webinars and meetups", true),
    ("Partners", "For partner companies", false),
    ("VIP", "Internal segment", false),
];

/// Adds `count` contacts (emails `first.last.N@example.com`, continuing after the
/// existing demo contacts), the demo groups, and memberships for a third of them.
pub async fn seed(db: &Db, now: i64, count: u64) -> anyhow::Result<()> {
    let mut group_ids = Vec::new();
    for (name, description, visible) in GROUPS {
        sqlx::query(
            "INSERT INTO contact_groups (name, description, visible_in_preference_center, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(description)
        .bind(i64::from(visible))
        .bind(now)
        .execute(db.write())
        .await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM contact_groups WHERE name = $1")
            .bind(name)
            .fetch_one(db.read())
            .await?;
        group_ids.push(id);
    }
    let start: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE email LIKE '%@example.com'")
            .fetch_one(db.read())
            .await?;
    let started = Instant::now();
    let batch = 1000u64;
    let mut done = 0u64;
    while done < count {
        let n = batch.min(count - done);
        let mut tx = db.begin().await?;
        for chunk_start in (0..n).step_by(100) {
            let rows: Vec<u64> = (chunk_start..(chunk_start + 100).min(n))
                .map(|i| start as u64 + done + i)
                .collect();
            let sql = db.backend.positional(format!(
                "INSERT INTO contacts (email, first_name, last_name, first_key, last_key, status, created_at, updated_at) \
                 VALUES {} RETURNING id",
                placeholders(rows.len(), 8)
            ));
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for i in &rows {
                // Spread names so that prefixes match realistic shares of contacts.
                let first = FIRST[(i % 24) as usize];
                let last = LAST[((i / 24) % 24) as usize];
                let email = format!(
                    "{}.{}.{i}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase()
                );
                q = q
                    .bind(email)
                    .bind(first)
                    .bind(last)
                    .bind(search_key(first))
                    .bind(search_key(last))
                    .bind(if i % 50 == 0 { "blocked" } else { "active" })
                    .bind(now)
                    .bind(now);
            }
            let ids = q.fetch_all(&mut *tx).await?;
            let members: Vec<(i64, i64)> = ids
                .iter()
                .filter(|id| *id % 3 == 0)
                .map(|id| (group_ids[(*id as usize / 3) % group_ids.len()], *id))
                .collect();
            if !members.is_empty() {
                let sql = db.backend.positional(format!(
                    "INSERT INTO group_members (group_id, contact_id, created_at) VALUES {} ON CONFLICT DO NOTHING",
                    placeholders(members.len(), 3)
                ));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (g, c) in members {
                    q = q.bind(g).bind(c).bind(now);
                }
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        done += n;
        if done.is_multiple_of(100_000) || done == count {
            println!(
                "{done} contacts ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    // Fresh statistics, so both planners pick the search indexes at once.
    sqlx::query("ANALYZE").execute(db.write()).await?;
    Ok(())
}
