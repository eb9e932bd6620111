//! Sign-in timing by account state: the median time of a wrong-password sign-in
//! for an unknown address, a known one, and one with an unused temporary password
//! waiting — for staff (`/login`) and contacts (`/preferences/login`). Equal costs
//! are what the tests prove (two argon2 verifications per attempt, counted); this
//! program shows what an attacker with a stopwatch would see.
//!
//! cargo run --release --example bench-signin [-- <tries>]
//!
//! Prints one line `RESULT {json}` for `bench/run`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::app::Application;
use herald::auth::{Plaintext, Priority};
use herald::clock::{Clock, SystemClock};
use herald::config::{Config, Secret};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A form's CSRF token from a page.
fn token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    html[start..start + 64].to_string()
}

async fn time_sign_in(
    db: &herald::db::Db,
    base: &str,
    path: &str,
    email: &str,
    tries: usize,
) -> Duration {
    let mut times = Vec::new();
    for _ in 0..tries {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = client.get(format!("{base}{path}")).send().await.unwrap();
        let csrf = token(&page.text().await.unwrap());
        let started = Instant::now();
        let r = client
            .post(format!("{base}{path}"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", email),
                ("password", "certainly not the password"),
            ])
            .send()
            .await
            .unwrap();
        times.push(started.elapsed());
        assert_eq!(r.status().as_u16(), 401, "{path} {email}");
        // Past 10 failures the throttle would add its delays: measure the hashing.
        sqlx::query("DELETE FROM signin_failures")
            .execute(db.write())
            .await
            .unwrap();
    }
    median(times)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tries: usize = std::env::args().nth(1).map_or(Ok(20), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::defaults();
    config.bind = "127.0.0.1:0".parse()?;
    config.data_dir = dir.path().to_path_buf();
    config.database_url = Secret::from(format!("sqlite://{}", dir.path().join("h.db").display()));
    let app = Application::build(config, Arc::new(SystemClock)).await?;
    let base = format!("http://{}", app.address());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let now = SystemClock.now_ms();
    let hash = |p: &'static str| {
        let state = state.clone();
        async move {
            state
                .hasher
                .hash(&Plaintext::new(p), Priority::Interactive)
                .await
                .unwrap()
        }
    };
    let (permanent, temporary) = (
        hash("a permanent password").await,
        hash("a temporary one!").await,
    );
    // Staff: the first admin (temporary password pending), and one with a password only.
    sqlx::query("INSERT INTO system_users (email, name, role, password_hash, created_at, updated_at) VALUES ('known@example.com', 'Known', 'marketer', $1, $2, $2)")
        .bind(&permanent)
        .bind(now)
        .execute(state.db.write())
        .await?;
    for (email, temp) in [
        ("known@example.com", None),
        ("pending@example.com", Some(&temporary)),
    ] {
        sqlx::query("INSERT INTO contacts (email, password_hash, temp_hash, temp_expires_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
            .bind(email)
            .bind(&permanent)
            .bind(temp)
            .bind(temp.map(|_| now + 3_600_000))
            .bind(now)
            .execute(state.db.write())
            .await?;
    }
    println!("median of {tries} wrong-password sign-ins, release build, SQLite:");
    let mut cases_measured = Vec::new();
    for (path, cases) in [
        (
            "/login",
            [
                ("unknown", "nobody@example.com"),
                ("known", "known@example.com"),
                ("pending temporary", "admin@localhost"),
            ],
        ),
        (
            "/preferences/login",
            [
                ("unknown", "nobody@example.com"),
                ("known", "known@example.com"),
                ("pending temporary", "pending@example.com"),
            ],
        ),
    ] {
        for (label, email) in cases {
            let before = state.hasher.verifications();
            let t = time_sign_in(&state.db, &base, path, email, tries).await;
            let per_try = (state.hasher.verifications() - before) as f64 / tries as f64;
            println!(
                "{path:<20} {label:<18} {:>6.1} ms   {per_try} argon2 verifications each",
                t.as_secs_f64() * 1000.0
            );
            cases_measured.push(serde_json::json!({
                "path": path, "state": label, "ms": t.as_secs_f64() * 1000.0,
                "verifications": per_try,
            }));
        }
    }
    let result = serde_json::json!({"engine": "SQLite", "tries": tries, "cases": cases_measured});
    println!("RESULT {result}");
    Ok(())
}
