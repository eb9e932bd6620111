//! Contacts at scale: prefix-search latency with a million contacts, and the CSV
//! import rate, each beside a reference measured in the same run on the same
//! database (a bare indexed lookup; a bare batched INSERT of the same rows).
//!
//! cargo run --release --example bench-contacts -- <database-url> [contacts] [import-rows]
//! e.g. sqlite:///tmp/herald-bench/herald.db 1000000 1000000

use std::io::Write;
use std::time::{Duration, Instant};

use herald::clock::{Clock, SystemClock};
use herald::contacts::{self, import};
use herald::db::Db;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "sqlite:///tmp/herald-bench/herald.db".into());
    let want: i64 = args.get(2).map_or(Ok(1_000_000), |s| s.parse())?;
    let import_rows: u64 = args.get(3).map_or(Ok(1_000_000), |s| s.parse())?;
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let have = contacts::search::count(&db).await?;
    println!("database: {:?}, contacts: {have}", db.backend);
    if have < want {
        let started = Instant::now();
        contacts::demo::seed(&db, SystemClock.now_ms(), (want - have) as u64).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "seeded {} contacts in {secs:.1} s ({:.0}/s)",
            want - have,
            (want - have) as f64 / secs
        );
    }

    // Search: the admin page's query (50 per page) for prefixes of every length.
    let reference_email = contacts::search::search(&db, "anna", None, 1).await?.0[0]
        .email
        .clone();
    let mut lookup = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        contacts::find_by_email(&db, &reference_email).await?;
        lookup.push(t.elapsed());
    }
    lookup.sort();
    println!(
        "reference: indexed lookup by email      p50 {}  p99 {}",
        ms(percentile(&lookup, 0.5)),
        ms(percentile(&lookup, 0.99))
    );
    let mut all = Vec::new();
    for q in [
        "a", "an", "ann", "anna", "anna.a", "b", "be", "becker", "k", "zoe", "anna b", "mia mey",
        "zz", "",
    ] {
        let mut times = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            let (page, next) = contacts::search::search(&db, q, None, 50).await?;
            if let Some(cursor) = next {
                // The next page too, as a click on "Next" would.
                contacts::search::search(&db, q, Some(&cursor), 50).await?;
            } else {
                std::hint::black_box(page);
            }
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "search {q:>10?} (two pages)  p50 {}  p99 {}  max {}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap())
        );
        all.extend(times);
    }
    all.sort();
    println!(
        "search, all prefixes: p50 {}  p99 {}  max {}",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap())
    );

    // Inside words: texts no email or name starts with, from one that every
    // contact holds (the demo domain) to one that none holds.
    let mut inner = Vec::new();
    for q in [
        "example.com",
        "ecker",
        "nna.b",
        "12345@",
        "ler.9",
        "zzq",
        "mueller",
    ] {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..100 {
            let t = Instant::now();
            let (page, next) = contacts::search::search(&db, q, None, 50).await?;
            found = page.len();
            if let Some(cursor) = next {
                contacts::search::search(&db, q, Some(&cursor), 50).await?;
            }
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "inside {q:>12?} ({found:>2} on page 1, two pages)  p50 {}  p99 {}  max {}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap())
        );
        inner.extend(times);
    }
    inner.sort();
    println!(
        "search inside words, all texts: p50 {}  p99 {}  max {}",
        ms(percentile(&inner, 0.5)),
        ms(percentile(&inner, 0.99)),
        ms(*inner.last().unwrap())
    );
    let t = Instant::now();
    let counted = contacts::search::total(&db, "ecker").await?;
    println!("count for \"ecker\": {counted} in {}", ms(t.elapsed()));

    if import_rows == 0 {
        return Ok(());
    }
    // Import: a generated file of new contacts with names and one attribute.
    let dir = std::env::temp_dir().join(format!("herald-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("contacts.csv");
    let run_id = SystemClock.now_ms();
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(out, "email,first_name,last_name,city")?;
        for i in 0..import_rows {
            writeln!(
                out,
                "import{run_id}.{i}@bench.example,First{i},Last{i},City{}",
                i % 1000
            )?;
        }
    }
    let size = std::fs::metadata(&path)?.len();
    let t = Instant::now();
    let checked = import::check::check_file(&path).map_err(|e| anyhow::anyhow!(e))?;
    let check = t.elapsed();
    let options = import::batch::Options {
        group_id: None,
        fire_registered: false,
        started_by: 0,
        consent_asserted_by: String::new(),
        file_name: "bench.csv".into(),
    };
    let id = import::store::start(&db, SystemClock.now_ms(), &path, &checked, &options, 0).await?;
    let t = Instant::now();
    import::store::run(&db, &SystemClock, id).await?;
    let run = t.elapsed();
    let done = import::store::find(&db, id.0).await?.expect("import row");
    assert_eq!(
        (done.status.as_str(), done.created),
        ("done", import_rows as i64),
        "import did not finish cleanly"
    );
    let total = check + run;
    println!(
        "import {import_rows} rows ({:.1} MB): whole-file check {:.2} s, import {:.2} s => {:.0} rows/s end to end",
        size as f64 / 1e6,
        check.as_secs_f64(),
        run.as_secs_f64(),
        import_rows as f64 / total.as_secs_f64()
    );

    // Reference: the same rows as bare batched INSERTs into a table with the same
    // shape and one unique index, nothing else.
    sqlx::query("DROP TABLE IF EXISTS bench_reference")
        .execute(db.write())
        .await?;
    sqlx::query("CREATE TABLE bench_reference (email TEXT NOT NULL UNIQUE, first_name TEXT, last_name TEXT, city TEXT)")
        .execute(db.write())
        .await?;
    let t = Instant::now();
    let mut i = 0u64;
    while i < import_rows {
        let mut tx = db.begin().await?;
        for _ in 0..10 {
            let n = 100.min(import_rows - i) as usize;
            if n == 0 {
                break;
            }
            // Bound as Herald's import binds its rows (plain `?` on SQLite).
            let sql = db.backend.positional(format!(
                "INSERT INTO bench_reference VALUES {}",
                herald::db::placeholders(n, 4)
            ));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for k in i..i + n as u64 {
                q = q
                    .bind(format!("ref{k}@bench.example"))
                    .bind(format!("First{k}"))
                    .bind(format!("Last{k}"))
                    .bind(format!("City{}", k % 1000));
            }
            q.execute(&mut *tx).await?;
            i += n as u64;
        }
        tx.commit().await?;
    }
    let reference = t.elapsed();
    sqlx::query("DROP TABLE bench_reference")
        .execute(db.write())
        .await?;
    println!(
        "reference: bare batched INSERT of {import_rows} rows {:.2} s => {:.0} rows/s; Herald's import reaches {:.0} % of it",
        reference.as_secs_f64(),
        import_rows as f64 / reference.as_secs_f64(),
        100.0 * reference.as_secs_f64() / total.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
