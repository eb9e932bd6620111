//! The event API's reference: a bare actix-web endpoint that takes the same JSON
//! body as `POST /api/v1/events` and makes one INSERT of it into the same engine
//! (sqlx 0.9, Herald's versions) — the shared anchor `actixhello`'s `/ingest`, with a
//! POST body and a PostgreSQL variant. No authentication, no matching, no runs.
//!
//! cargo run --release --example bench-bare-api -- <database-url> <address>
//!   GET /       → "Hello, world!"
//!   POST /events → one INSERT, 202
//!   GET /l/{token} → 302 to a fixed target (the clicks' reference)

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

const PG_TABLE: &str = "CREATE TABLE IF NOT EXISTS bare_events (id BIGSERIAL PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL)";
const SQLITE_TABLE: &str = "CREATE TABLE IF NOT EXISTS bare_events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL)";

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The clicks' reference: a 302 to a fixed target, nothing looked up or written.
async fn redirect() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "https://shop.example/spring-sale"))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

async fn hello() -> &'static str {
    "Hello, world!"
}

async fn ingest(pool: web::Data<Pool>, body: web::Json<serde_json::Value>) -> HttpResponse {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let kind = body
        .get("event")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_string();
    let payload = body.to_string();
    let sql = "INSERT INTO bare_events (ts, kind, payload) VALUES ($1, $2, $3)";
    let inserted = match pool.get_ref() {
        Pool::Sqlite(p) => sqlx::query(sql)
            .bind(ts)
            .bind(kind)
            .bind(payload)
            .execute(p)
            .await
            .map(|_| ()),
        Pool::Postgres(p) => sqlx::query(sql)
            .bind(ts)
            .bind(kind)
            .bind(payload)
            .execute(p)
            .await
            .map(|_| ()),
    };
    match inserted {
        Ok(()) => HttpResponse::Accepted().finish(),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "sqlite:///var/tmp/herald-bench-bare.db".into());
    let address = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let pool = if url.starts_with("postgres") {
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect(&url)
            .await?;
        sqlx::query(PG_TABLE).execute(&pool).await?;
        Pool::Postgres(pool)
    } else {
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(4)
            .connect_with(options)
            .await?;
        sqlx::query(SQLITE_TABLE).execute(&pool).await?;
        Pool::Sqlite(pool)
    };
    let data = web::Data::new(pool);
    eprintln!("listening on {address}, {url}");
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/", web::get().to(hello))
            .route("/events", web::post().to(ingest))
            .route("/l/{token}", web::get().to(redirect))
    })
    .bind(address)?
    .run()
    .await?;
    Ok(())
}
