//! Bounces: (1) delivery status notifications taken per second through Herald's
//! inbound SMTP port on SQLite — each one read, matched by its Message-ID to a
//! recorded email, stored, and the address suppressed — against the same stream
//! into the tests' SMTP server, which only keeps what it receives (the SMTP
//! conversation alone), in the same run; (2) the cost of the suppression check
//! before every send: emails per second on one pooled connection with and without
//! the check, side by side, with 100,000 addresses on the list.
//!
//! cargo run --release --example bench-bounces -- [dsns] [emails]
//!
//! Prints one line `RESULT {json}` for `bench/run`.

#[path = "../tests/app/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::sync::Arc;
use std::time::Instant;

use herald::clock::{Clock, SystemClock};
use herald::db::Db;
use herald::deliveries::{self, BounceAddresses, Kind, Sent};
use herald::mail::{Email, Mailer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Connections the DSNs come over at once (a mail server's delivery agents).
const CONNECTIONS: usize = 4;
/// Addresses on the suppression list for the check's cost.
const LISTED: usize = 100_000;

fn dsn(recipient: &str, message_id: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: postmaster@bounce.example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: news@example.com\r\nTo: {recipient}\r\n\
         Message-ID: {message_id}\r\nSubject: News\r\n\r\n--b--\r\n"
    )
}

async fn reply(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> anyhow::Result<String> {
    let mut line = String::new();
    loop {
        line.clear();
        anyhow::ensure!(read.read_line(&mut line).await? > 0, "closed");
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line);
        }
    }
}

/// Sends `messages` over one SMTP session to `port`; every one must be taken.
async fn session(port: u16, messages: Vec<String>) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    reply(&mut read).await?;
    write.write_all(b"EHLO mx.example.net\r\n").await?;
    reply(&mut read).await?;
    for m in messages {
        for command in [
            "MAIL FROM:<>\r\n",
            "RCPT TO:<postmaster@bounce.example.com>\r\n",
            "DATA\r\n",
        ] {
            write.write_all(command.as_bytes()).await?;
            let r = reply(&mut read).await?;
            anyhow::ensure!(r.starts_with('2') || r.starts_with('3'), "{command}: {r}");
        }
        write.write_all(m.as_bytes()).await?;
        write.write_all(b".\r\n").await?;
        let r = reply(&mut read).await?;
        anyhow::ensure!(r.starts_with("250"), "DATA: {r}");
    }
    write.write_all(b"QUIT\r\n").await?;
    Ok(())
}

/// DSNs per second into `port`, over [`CONNECTIONS`] sessions.
async fn stream(port: u16, dsns: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for part in dsns.chunks(dsns.len().div_ceil(CONNECTIONS)) {
        tasks.spawn(session(port, part.to_vec()));
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(dsns.len() as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(5000), |s| s.parse())?;
    let emails: usize = std::env::args().nth(2).map_or(Ok(2000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let db = Db::connect(&format!("sqlite://{}/bench.db", dir.path().display())).await?;
    db.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();

    // (1) n emails recorded, then a DSN for each.
    let mut dsns = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let sent: Vec<Sent> = chunk
            .iter()
            .map(|i| {
                let id = format!("<{}@example.com>", deliveries::new_reference());
                dsns.push(dsn(&format!("reader{i}@example.org"), &id));
                Sent::new(Kind::Message, id, &format!("reader{i}@example.org"))
            })
            .collect();
        deliveries::record(&db, now - 60_000, &sent).await?;
    }
    let mut settings = herald::settings::Settings::load(&db).await?;
    settings.bounce_domain = "bounce.example.com".into();
    let mut tx = db.begin().await?;
    settings.save(&mut tx, now).await?;
    tx.commit().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let inbound = herald::feedback::smtp::Inbound {
        db: db.clone(),
        clock: clock.clone(),
        bounces: BounceAddresses::new(b"a benchmark secret key of some length"),
        settings: Default::default(),
        hostname: "herald.bench".into(),
    };
    let server = tokio::spawn(herald::feedback::smtp::serve(listener, inbound));
    let herald_per_s = stream(port, &dsns).await?;
    let suppressed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM suppressions")
        .fetch_one(db.read())
        .await?;
    anyhow::ensure!(suppressed as usize == n, "{suppressed} of {n} suppressed");
    server.abort();
    let reference = smtp::SmtpServer::start().await;
    let reference_per_s = stream(reference.port, &dsns).await?;
    anyhow::ensure!(reference.count() == n, "the reference kept every DSN");
    println!(
        "herald, inbound SMTP on SQLite: {herald_per_s:.0} DSNs/s ({n} DSNs over {CONNECTIONS} connections; each matched, stored, suppressed)"
    );
    println!("reference: the tests' SMTP server, receiving only: {reference_per_s:.0} DSNs/s");
    println!("ratio: {:.2}", herald_per_s / reference_per_s);

    // (2) The suppression check before a send, on one pooled connection.
    let mut tx = db.begin().await?;
    for chunk in (0..LISTED).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("('listed{i}@example.net', 'manual', 'bench', '', {now})"))
            .collect();
        let sql = format!(
            "INSERT INTO suppressions (address, reason, source, detail, created_at) VALUES {}",
            values.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE suppression_version SET version = version + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let server = smtp::SmtpServer::start().await;
    let mailer = Mailer::new(
        Some(&server.url()),
        None,
        dir.path(),
        std::time::Duration::from_secs(15),
    )?;
    let email = |i: usize| Email {
        from_name: "Herald".into(),
        from_address: "news@example.com".into(),
        to: format!("reader{i}@example.com"),
        subject: "News".into(),
        text: "Hello\n".into(),
        html: "<p>Hello</p>".into(),
        ..Default::default()
    };
    let checker = herald::suppressions::Checker::default();
    mailer
        .send(&email(0))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    checker.find(&db, "warm@example.com").await?;
    let (mut plain, mut checked, mut queried) = (Vec::new(), Vec::new(), Vec::new());
    // Alternated, so the machine's drift touches all three alike.
    for _round in 0..5 {
        let t = Instant::now();
        for i in 0..emails {
            mailer
                .send(&email(i))
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        plain.push(emails as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in 0..emails {
            let e = email(i);
            anyhow::ensure!(checker.find(&db, &e.to).await?.is_none());
            mailer.send(&e).await.map_err(|e| anyhow::anyhow!(e))?;
        }
        checked.push(emails as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for i in 0..emails {
            let e = email(i);
            anyhow::ensure!(herald::suppressions::find(&db, &e.to).await?.is_none());
            mailer.send(&e).await.map_err(|e| anyhow::anyhow!(e))?;
        }
        queried.push(emails as f64 / t.elapsed().as_secs_f64());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (plain, checked, queried) = (mean(&plain), mean(&checked), mean(&queried));
    println!(
        "sends without a check: {plain:.0}/s; with the cached check: {checked:.0}/s; with a query per send: {queried:.0}/s"
    );
    // The sends' own noise is a few per cent: the check is also timed alone.
    let checks = 100_000;
    let t = Instant::now();
    for i in 0..checks {
        std::hint::black_box(checker.find(&db, &format!("reader{i}@example.com")).await?);
    }
    let check_us = t.elapsed().as_secs_f64() * 1e6 / checks as f64;
    let t = Instant::now();
    for i in 0..emails {
        std::hint::black_box(
            herald::suppressions::find(&db, &format!("reader{i}@example.com")).await?,
        );
    }
    let query_us = t.elapsed().as_secs_f64() * 1e6 / emails as f64;
    let send_us = 1e6 / plain;
    println!(
        "one check alone: {check_us:.2} µs = {:.2} % of one send ({send_us:.0} µs); one query alone: {query_us:.1} µs = {:.1} %",
        check_us / send_us * 100.0,
        query_us / send_us * 100.0
    );
    let result = serde_json::json!({
        "dsns": n, "herald_per_s": herald_per_s, "reference_per_s": reference_per_s,
        "emails": emails, "listed": LISTED, "sends_plain_per_s": plain,
        "sends_checked_per_s": checked, "sends_queried_per_s": queried,
        "check_us": check_us, "query_us": query_us, "send_us": send_us,
    });
    println!("RESULT {result}");
    Ok(())
}
