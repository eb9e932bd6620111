//! What an email says about who sends it and to whom, as a real SMTP server
//! receives it.

use std::time::Duration;

use crate::smtp::SmtpServer;

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
        herald::mail::Mailer::new(Some(&smtp.url()), dir.path(), Duration::from_secs(10)).unwrap();
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
            unsubscribe: None,
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
