//! DKIM: a key made by `herald dkim generate` (kept sealed in the database) signs
//! every email, and an independent verifier (Python's dkimpy) agrees; the Settings
//! page shows the records to publish.

use std::process::Command;

use herald::auth::users::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, skipped_once, text_of};
use crate::smtp::SmtpServer;

/// The Python that has dkimpy (`.ci/run` makes it).
const DKIMPY: &str = "/var/tmp/herald-dkimpy/bin/python";

/// Keeps an RSA key for example.com, as `herald dkim generate` does, and has the
/// app use it now.
async fn keep_key(app: &TestApp) -> herald::dkim::Stored {
    let secret = herald::app::session_key(&app.state.config).unwrap();
    let stored = herald::dkim::create(
        &app.state.db,
        secret.master(),
        "Example.com",
        "herald",
        herald::dkim::Algorithm::Rsa,
        app.now_ms(),
    )
    .await
    .unwrap();
    app.state.dkim.refresh(&app.state.db).await.unwrap();
    assert!(app.state.dkim.config().is_some(), "the app signs with it");
    stored
}

/// Whether dkimpy finds `message` (as received, lines joined by `\n`) signed by
/// the key of `record`; `None` where dkimpy is missing outside CI.
fn dkimpy_verifies(message: &str, record: &str) -> Option<bool> {
    if !std::path::Path::new(DKIMPY).exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but {DKIMPY} is missing: .ci/run installs dkimpy");
        }
        skipped_once(
            "DKIM verification (dkimpy)",
            "python3 -m venv /var/tmp/herald-dkimpy && /var/tmp/herald-dkimpy/bin/pip install dkimpy",
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("message.eml");
    std::fs::write(&path, message.replace('\n', "\r\n")).unwrap();
    let script = "import dkim, sys\n\
                  msg = open(sys.argv[1], 'rb').read()\n\
                  record = sys.argv[2].encode()\n\
                  print(dkim.verify(msg, dnsfunc=lambda name, timeout=5: record))\n";
    let out = Command::new(DKIMPY)
        .args(["-c", script, path.to_str().unwrap(), record])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(said.trim() == "True")
}

async fn a_kept_key_signs_every_email_and_an_independent_verifier_agrees(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Admin).await;
    let stored = keep_key(&app).await;
    assert_eq!(stored.record_name(), "herald._domainkey.example.com");
    assert!(stored.record_value().starts_with("v=DKIM1; k=rsa; p=MII"));
    let r = app
        .submit_with(
            &client,
            "/admin/settings",
            "/admin/settings",
            &[("sender_address", "news@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let automation = crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    crate::scheduler::request_password(&app, cleo).await;
    app.drain_due_runs().await;
    assert_eq!(
        crate::scheduler::runs(&app, automation).await[0]
            .status
            .code(),
        "done"
    );
    let mail = smtp.last_to("cleo@example.com").expect("the email");
    let headers = mail.data.split("\n\n").next().unwrap();
    assert!(
        headers.contains("\nDKIM-Signature: v=1; a=rsa-sha256;"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("d=example.com;") && mail.data.contains("s=herald;"));
    if let Some(verified) = dkimpy_verifies(&mail.data, &stored.record_value()) {
        assert!(verified, "dkimpy does not verify:\n{}", mail.data);
        let altered = mail.data.replacen("Subject: ", "Subject: Re: ", 1);
        assert_eq!(
            dkimpy_verifies(&altered, &stored.record_value()),
            Some(false),
            "an altered message fails"
        );
    }
}

async fn emails_are_not_signed_without_a_key(app: TestApp, smtp: SmtpServer) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    crate::scheduler::password_automation(&app, &client, &[], &[]).await;
    let cleo = crate::scheduler::contact(&app, "cleo@example.com", "cleo's own password").await;
    crate::scheduler::request_password(&app, cleo).await;
    app.drain_due_runs().await;
    let mail = smtp.last_to("cleo@example.com").expect("the email");
    assert!(!mail.data.contains("DKIM-Signature"));
}

with_smtp!(
    a_kept_key_signs_every_email_and_an_independent_verifier_agrees,
    emails_are_not_signed_without_a_key
);

async fn settings_show_the_dkim_spf_and_dmarc_records(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    app.submit_with(
        &admin,
        "/admin/settings",
        "/admin/settings",
        &[("sender_address", "news@example.com")],
    )
    .await;
    let (_, html) = app.page_with(&admin, "/admin/settings").await;
    assert_eq!(
        text_of(&html, "#dkim-status").unwrap(),
        "emails are not signed"
    );
    assert!(html.contains("herald dkim generate --domain example.com"));
    assert_eq!(
        text_of(&html, "#dmarc-value").unwrap(),
        "v=DMARC1; p=none; rua=mailto:postmaster@example.com"
    );
    let stored = keep_key(&app).await;
    let (_, html) = app.page_with(&admin, "/admin/settings").await;
    assert_eq!(text_of(&html, "#dkim-status").unwrap(), "emails are signed");
    assert_eq!(
        text_of(&html, "#dkim-name").unwrap(),
        "herald._domainkey.example.com"
    );
    assert_eq!(
        text_of(&html, "#dkim-value").unwrap(),
        stored.record_value()
    );
}

on_both_engines!(settings_show_the_dkim_spf_and_dmarc_records);

#[test]
fn the_command_line_makes_a_key_and_prints_its_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(crate::binary::BIN)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "dkim",
        "generate",
        "--domain",
        "example.com",
        "--algorithm",
        "ed25519",
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("herald._domainkey.example.com TXT \"v=DKIM1; k=ed25519; p="),
        "{said}"
    );
    let out = run(&["dkim", "generate", "--domain", "example.com; rm -rf /"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--domain"));
    let db = std::fs::read(dir.path().join("data/herald.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(
        !text.contains("PRIVATE KEY"),
        "the private key is kept sealed"
    );
}
