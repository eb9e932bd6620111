//! What an email says about who sends it and to whom, as a real SMTP server
//! receives it.

use std::time::Duration;

use crate::smtp::SmtpServer;

/// A short email from news@herald.test to `to`.
pub fn hello(to: &str) -> herald::mail::Email {
    herald::mail::Email {
        from_name: "Herald".into(),
        from_address: "news@herald.test".into(),
        to_name: String::new(),
        to: to.into(),
        subject: "Hello".into(),
        text: "Hello".into(),
        html: "<p>Hello</p>".into(),
        ..Default::default()
    }
}

/// The name in a header as a mail client shows it: folded lines joined, quoted
/// strings unquoted and RFC 2047 words (`=?utf-8?b?…?=`) decoded.
fn shown(data: &str, header: &str) -> String {
    use base64::Engine;
    let unfolded = data.replace("\r\n ", " ").replace("\r\n\t", " ");
    let line = unfolded
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{header}: ")))
        .unwrap_or_else(|| panic!("no {header}: in {data}"))
        .to_string();
    // A quoted string's quotes and backslashes are not part of the name.
    let unquoted = |plain: &str| {
        let mut name = String::new();
        let mut chars = plain.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => {}
                '\\' => name.extend(chars.next()),
                c => name.push(c),
            }
        }
        name
    };
    let mut out = String::new();
    let mut rest = line.as_str();
    while let Some(start) = rest.find("=?utf-8?b?") {
        out.push_str(&unquoted(&rest[..start]));
        let word = &rest[start + 10..];
        let end = word.find("?=").expect("an encoded word ends");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&word[..end])
            .unwrap();
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = &word[end + 2..];
        // Space between two encoded words is not part of the text (RFC 2047 §6.2).
        if rest.trim_start_matches(' ').starts_with("=?utf-8?b?") {
            rest = rest.trim_start_matches(' ');
        }
    }
    out.push_str(&unquoted(rest));
    out
}

/// A sender or recipient name with commas, parentheses, colons, quotes, angle
/// brackets or umlauts reaches a real SMTP server whole, in `From:` and `To:`
/// (the `From:` lost it before: the mailbox was parsed from "name <address>").
#[tokio::test]
async fn sender_and_recipient_names_arrive_whole_whatever_they_hold() {
    let smtp = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mailer =
        herald::mail::Mailer::new(Some(&smtp.url()), None, dir.path(), Duration::from_secs(10))
            .unwrap();
    for (i, name) in [
        "Shop, Inc.",
        "Dr. Müller (Vertrieb)",
        "Team: Herald",
        "Say \"hi\" <now>",
        "Plain",
    ]
    .iter()
    .enumerate()
    {
        let to = format!("reader{i}@example.com");
        let email = herald::mail::Email {
            from_name: name.to_string(),
            from_address: "news@herald.test".into(),
            to_name: format!("{name} reader"),
            to: to.clone(),
            subject: "Hello".into(),
            text: "Hello".into(),
            html: "<p>Hello</p>".into(),
            ..Default::default()
        };
        mailer.send(&email).await.unwrap();
        let mail = smtp.last_to(&to).expect("delivered");
        assert_eq!(
            shown(&mail.data, "From"),
            format!("{name} <news@herald.test>"),
            "{}",
            mail.data
        );
        assert_eq!(
            shown(&mail.data, "To"),
            format!("{name} reader <{to}>"),
            "{}",
            mail.data
        );
    }
}

/// A Postfix of the test's own (`tests/postfix/instance.sh`): loopback only, a
/// certificate from a CA the test made, every transport `error` so nothing leaves.
/// One at a time (they share their folder): a test holds it while it runs.
pub(crate) struct Postfix {
    dir: std::path::PathBuf,
    certs: tempfile::TempDir,
    pub(crate) starttls: u16,
    pub(crate) smtps: u16,
    _one: std::sync::MutexGuard<'static, ()>,
}

static ONE_POSTFIX: std::sync::Mutex<()> = std::sync::Mutex::new(());

const POSTFIX_DIR: &str = "/var/tmp/herald-postfix";

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postfix {
    /// None (with a note) where Postfix cannot run here; in CI that is a failure.
    fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// [`start`](Self::start), and with `bounces` (a bounce domain and Herald's
    /// inbound port) mail to reject.herald.test bounces, and Postfix hands the
    /// bounce it writes to Herald.
    pub(crate) fn start_with(bounces: Option<(&str, u16)>) -> Option<Self> {
        let usable = std::process::Command::new("postconf")
            .arg("-h")
            .arg("alternate_config_directories")
            .output()
            .ok()
            .filter(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains(POSTFIX_DIR)
            });
        if usable.is_none() {
            let why = format!(
                "Postfix is not installed, or {POSTFIX_DIR} is not in its alternate_config_directories (.ci/run sets both up)"
            );
            assert!(std::env::var("CI").is_err(), "{why}");
            eprintln!("skipped: {why}");
            return None;
        }
        let certs = tempfile::tempdir().unwrap();
        let at = |name: &str| certs.path().join(name);
        let openssl = |args: &[&str]| {
            run(std::process::Command::new("openssl")
                .args(args)
                .current_dir(certs.path()))
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=Herald Test CA",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=localhost",
                ],
            ]
            .concat(),
        );
        std::fs::write(at("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        let one = ONE_POSTFIX.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::path::PathBuf::from(POSTFIX_DIR);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/postfix/instance.sh");
        let _ = std::process::Command::new(script)
            .args(["stop", POSTFIX_DIR])
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        let (starttls, smtps) = (free_port(), free_port());
        run(std::process::Command::new(script)
            .args([
                "start",
                POSTFIX_DIR,
                &starttls.to_string(),
                &smtps.to_string(),
            ])
            .arg(at("server.pem"))
            .arg(at("server.key"))
            .args(bounces.map_or_else(Vec::new, |(domain, port)| {
                vec![
                    domain.to_string(),
                    port.to_string(),
                    free_port().to_string(),
                ]
            })));
        // `postfix start` returns before its master has bound the ports (later
        // still on a busy machine): wait until both take connections.
        for port in [starttls, smtps] {
            let started = std::time::Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "Postfix does not listen on {port}:\n{}",
                    std::fs::read_to_string(dir.join("maillog")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Some(Self {
            dir,
            certs,
            starttls,
            smtps,
            _one: one,
        })
    }

    fn ca(&self) -> std::path::PathBuf {
        self.certs.path().join("ca.pem")
    }

    /// Postfix's log, once it holds `text` (up to 30 s).
    pub(crate) async fn log_with(&self, text: &str) -> String {
        for _ in 0..300 {
            let log = std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default();
            if log.contains(text) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "Postfix's log never said {text:?}:\n{}",
            std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
        );
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/postfix/instance.sh");
        let _ = std::process::Command::new(script)
            .args(["stop", POSTFIX_DIR])
            .output();
    }
}

/// STARTTLS and smtps to a real Postfix whose certificate an internal CA signed:
/// without `smtp_ca_file` the send fails at once, as permanent, saying whose
/// certificate is not trusted; with the CA named, Postfix takes the message over TLS.
#[tokio::test]
async fn mail_to_a_postfix_with_a_private_ca_is_trusted_only_with_smtp_ca_file() {
    let Some(postfix) = Postfix::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("smtp://127.0.0.1:{}?tls=required", postfix.starttls),
        format!("smtps://127.0.0.1:{}", postfix.smtps),
    ] {
        let untrusted =
            herald::mail::Mailer::new(Some(&url), None, dir.path(), Duration::from_secs(10))
                .unwrap();
        match untrusted.send(&hello("nobody@example.com")).await {
            Err(herald::mail::SendError::Permanent(why)) => {
                assert!(
                    why.contains("the certificate of 127.0.0.1 is not trusted")
                        && why.contains("UnknownIssuer"),
                    "{url}: {why}"
                );
            }
            other => panic!("{url}: {other:?}"),
        }
        let ca = postfix.ca();
        let trusted =
            herald::mail::Mailer::new(Some(&url), Some(&ca), dir.path(), Duration::from_secs(10))
                .unwrap();
        // The test domain, which this Postfix takes and discards.
        let to = format!(
            "reader{}@herald.test",
            if url.starts_with("smtps") {
                "-smtps"
            } else {
                "-starttls"
            }
        );
        trusted
            .send(&hello(&to))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e:?}"));
        let log = postfix
            .log_with(&format!("to=<{to}>, relay=none, delay"))
            .await;
        assert!(
            log.contains("TLS connection established from localhost[127.0.0.1]"),
            "{log}"
        );
    }
    // The system's store counts: the CA given the way OpenSSL tools take it
    // (SSL_CERT_FILE), to a `herald send-test-email` process, without smtp_ca_file.
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::binary::BIN)
        .current_dir(work.path())
        .env_clear()
        .env(
            "HERALD_SMTP_URL",
            format!("smtp://127.0.0.1:{}?tls=required", postfix.starttls),
        )
        .env("SSL_CERT_FILE", postfix.ca())
        .args(["send-test-email", "--to", "reader-system-store@herald.test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    postfix
        .log_with("to=<reader-system-store@herald.test>, relay=none")
        .await;
}
