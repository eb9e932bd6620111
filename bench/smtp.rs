//! Messages per second on one pooled SMTP connection to a local server: Herald's
//! mailer (TCP_NODELAY connections) against lettre's own pooled transport, in the
//! same run. The server is the tests' SMTP server (real SMTP over TCP).
//!
//! cargo run --release --example bench-smtp -- [messages]
//!
//! Prints one line `RESULT {json}` for `bench/run`.

#[path = "../tests/app/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::time::Instant;

use herald::mail::{Email, Mailer};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(500), |s| s.parse())?;
    let server = smtp::SmtpServer::start().await;
    let email = Email {
        from_name: "Herald".into(),
        from_address: "herald@example.com".into(),
        to_name: "Someone".into(),
        to: "someone@example.com".into(),
        subject: "Your new password".into(),
        text: "Here is your new password:\n\n    Xy7#abcdEFGH2345\n".into(),
        html: "<p>Here is your new password: <code>Xy7#abcdEFGH2345</code></p>".into(),
        ..Default::default()
    };
    let mailer = Mailer::new(
        Some(&server.url()),
        None,
        std::path::Path::new("/tmp"),
        std::time::Duration::from_secs(15),
    )?;
    mailer.send(&email).await.map_err(|e| anyhow::anyhow!(e))?; // connect first
    let t = Instant::now();
    for _ in 0..n {
        mailer.send(&email).await.map_err(|e| anyhow::anyhow!(e))?;
    }
    let herald = n as f64 / t.elapsed().as_secs_f64();

    let lettre_pool = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port)
        .pool_config(PoolConfig::new().max_size(1))
        .build();
    let message = || {
        Message::builder()
            .from("Herald <herald@example.com>".parse().unwrap())
            .to("someone@example.com".parse().unwrap())
            .subject("Your new password")
            .body(String::from(
                "Here is your new password: Xy7#abcdEFGH2345\n",
            ))
            .unwrap()
    };
    lettre_pool.send(message()).await?;
    let m = n.min(200);
    let t = Instant::now();
    for _ in 0..m {
        lettre_pool.send(message()).await?;
    }
    let reference = m as f64 / t.elapsed().as_secs_f64();
    assert_eq!(server.messages().len(), n + m + 2, "every message arrived");
    println!("herald mailer, one pooled connection: {herald:.0} messages/s ({n} messages)");
    println!(
        "reference: lettre 0.11 pooled transport, one connection: {reference:.0} messages/s ({m} messages)"
    );
    println!("ratio: {:.1}x", herald / reference);
    let result = serde_json::json!({
        "messages": n, "herald_per_s": herald,
        "reference_messages": m, "reference_per_s": reference,
    });
    println!("RESULT {result}");
    Ok(())
}
