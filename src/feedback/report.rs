//! Reading what the mail system sends back: a delivery status notification (RFC
//! 3464, `multipart/report; report-type=delivery-status`) or a complaint (RFC 5965
//! ARF, `report-type=feedback-report`). The MIME is mail-parser's; the fields of a
//! report part (`Action: failed`, `Status: 5.1.1`) are header-like lines read here.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// What a report says of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A permanent failure (5.x.x): the mailbox does not exist.
    HardBounce,
    /// A temporary failure (4.x.x) that made the mail system give up.
    SoftBounce,
    /// The mail system is still trying.
    Delayed,
    /// The recipient reported the message as spam.
    Complaint,
}

impl Notice {
    pub fn code(self) -> &'static str {
        match self {
            Notice::HardBounce => "hard_bounce",
            Notice::SoftBounce => "soft_bounce",
            Notice::Delayed => "delayed",
            Notice::Complaint => "complaint",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Notice::HardBounce => "hard bounce",
            Notice::SoftBounce => "soft bounce",
            Notice::Delayed => "delay notice",
            Notice::Complaint => "complaint",
        }
    }
}

/// One recipient a report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub notice: Notice,
    /// The address the report names (lower case); empty when it names none.
    pub address: String,
    /// The status code, `5.1.1` (empty for a complaint).
    pub status: String,
    /// What the remote server said, or the feedback type of a complaint.
    pub diagnostic: String,
}

/// A report, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The recipients it is about (none: it is not a report Herald can act on).
    pub recipients: Vec<Recipient>,
    /// The Message-ID of the email it returns, when it returns its headers.
    pub original_message_id: Option<String>,
    /// Why it is not a report, when it is not.
    pub problem: Option<&'static str>,
}

/// The most characters kept of a diagnostic.
const MAX_DIAGNOSTIC: usize = 300;

/// Reads `raw` (a whole message as received). Never fails: what it cannot read
/// is a report with no recipients and a `problem`.
pub fn read(raw: &[u8]) -> Report {
    let Some(message) = MessageParser::default().parse(raw) else {
        return not_a_report("the message has no headers");
    };
    let root = message.root_part();
    let report_type = root
        .content_type()
        .filter(|t| {
            t.ctype().eq_ignore_ascii_case("multipart")
                && t.subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|t| t.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let mut report = Report::default();
    let mut fields: Option<(&str, Vec<u8>)> = None;
    for part in &message.parts {
        let Some(t) = part.content_type() else {
            continue;
        };
        let (ctype, subtype) = (
            t.ctype().to_ascii_lowercase(),
            t.subtype().unwrap_or("").to_ascii_lowercase(),
        );
        match (ctype.as_str(), subtype.as_str(), &part.body) {
            ("message", "delivery-status" | "global-delivery-status", _) => {
                fields = Some(("delivery-status", part.contents().to_vec()));
            }
            ("message", "feedback-report", _) => {
                fields = Some(("feedback-report", part.contents().to_vec()));
            }
            (_, _, PartType::Message(original)) => {
                if report.original_message_id.is_none() {
                    report.original_message_id = original.message_id().map(angle);
                }
                if report.recipients.is_empty() {
                    // The complaint's fallback: whom the original was to.
                    original_to(original, &mut report);
                }
            }
            ("text", "rfc822-headers", _) => {
                if let Some(headers) = MessageParser::default().parse_headers(part.contents()) {
                    report.original_message_id = headers.message_id().map(angle);
                    if report.recipients.is_empty() {
                        original_to(&headers, &mut report);
                    }
                }
            }
            _ => {}
        }
    }
    // The recipients of the original were only a fallback for a complaint.
    let original_recipients = std::mem::take(&mut report.recipients);
    match (report_type.as_deref(), fields) {
        (Some("delivery-status"), Some(("delivery-status", body))) => {
            report.recipients = delivery_status(&body);
            if report.recipients.is_empty() {
                report.problem = Some("the delivery status names no failed or delayed recipient");
            }
        }
        (Some("feedback-report"), Some(("feedback-report", body))) => {
            let blocks = blocks(&body);
            let first = blocks.first();
            let field = |name: &str| first.and_then(|b| value(b, name)).unwrap_or_default();
            let feedback = field("feedback-type").to_ascii_lowercase();
            if feedback == "not-spam" {
                report.problem = Some("the feedback report says the message is not spam");
                return report;
            }
            let rcpt = address_of(&field("original-rcpt-to"));
            let addresses: Vec<String> = if rcpt.is_empty() {
                original_recipients
                    .iter()
                    .map(|r| r.address.clone())
                    .collect()
            } else {
                vec![rcpt]
            };
            let addresses = if addresses.is_empty() {
                vec![String::new()]
            } else {
                addresses
            };
            report.recipients = addresses
                .into_iter()
                .map(|address| Recipient {
                    notice: Notice::Complaint,
                    address,
                    status: String::new(),
                    diagnostic: format!("feedback type {}", non_empty(&feedback, "abuse")),
                })
                .collect();
        }
        (Some(_), _) => {
            report.problem = Some("the report has no delivery-status or feedback-report part")
        }
        (None, _) => report.problem = Some("not a delivery status notification or complaint"),
    }
    report
}

fn not_a_report(why: &'static str) -> Report {
    Report {
        problem: Some(why),
        ..Report::default()
    }
}

fn non_empty<'a>(s: &'a str, or: &'a str) -> &'a str {
    if s.is_empty() { or } else { s }
}

/// `<id>` whether or not the parser kept the brackets.
fn angle(id: &str) -> String {
    format!(
        "<{}>",
        id.trim().trim_start_matches('<').trim_end_matches('>')
    )
}

/// The `To:` addresses of a returned original, as complaint recipients.
fn original_to(original: &mail_parser::Message<'_>, report: &mut Report) {
    if let Some(to) = original.to() {
        for a in to.iter() {
            if let Some(address) = a.address() {
                report.recipients.push(Recipient {
                    notice: Notice::Complaint,
                    address: address.trim().to_lowercase(),
                    status: String::new(),
                    diagnostic: String::new(),
                });
            }
        }
    }
}

/// The per-recipient blocks of a delivery-status part, as recipients (those that
/// failed or are delayed; delivered, relayed and expanded ones are not news).
fn delivery_status(body: &[u8]) -> Vec<Recipient> {
    let blocks = blocks(body);
    let mut out = Vec::new();
    // The first block is about the message; the others each about a recipient.
    for block in blocks.iter().skip(1) {
        let action = value(block, "action")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let status = value(block, "status")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        let class = status.chars().next();
        let notice = match (action.as_str(), class) {
            ("failed", Some('4')) => Notice::SoftBounce,
            ("failed", _) => Notice::HardBounce,
            ("delayed", _) => Notice::Delayed,
            ("", Some('5')) => Notice::HardBounce,
            ("", Some('4')) => Notice::SoftBounce,
            _ => continue,
        };
        let address = value(block, "final-recipient")
            .or_else(|| value(block, "original-recipient"))
            .map(|v| address_of(&v))
            .unwrap_or_default();
        let diagnostic = value(block, "diagnostic-code")
            .map(|d| {
                // "smtp; 550 5.1.1 <x@y>: user unknown": the type goes.
                d.split_once(';')
                    .map_or(d.as_str(), |(_, text)| text)
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        out.push(Recipient {
            notice,
            address,
            status: status
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .take(16)
                .collect(),
            diagnostic: diagnostic.chars().take(MAX_DIAGNOSTIC).collect(),
        });
    }
    out
}

/// The address of an address field, `rfc822; Ann@Example.com` → `ann@example.com`.
fn address_of(v: &str) -> String {
    let v = v.split_once(';').map_or(v, |(_, a)| a);
    v.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_lowercase()
}

/// A report part's blocks (separated by empty lines), each its fields with
/// continuation lines unfolded, names in lower case. Bytes that are not UTF-8
/// are read lossily.
fn blocks(body: &[u8]) -> Vec<Vec<(String, String)>> {
    let text = String::from_utf8_lossy(body);
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                out.push(std::mem::take(&mut block));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = block.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            block.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !block.is_empty() {
        out.push(block);
    }
    out
}

fn value(block: &[(String, String)], name: &str) -> Option<String> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_unfold_continuation_lines() {
        let b = blocks(b"Reporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b.c\r\nDiagnostic-Code: smtp; 550\r\n  user unknown\r\n");
        assert_eq!(b.len(), 2);
        assert_eq!(
            value(&b[1], "diagnostic-code").unwrap(),
            "smtp; 550 user unknown"
        );
        assert_eq!(address_of("rfc822; <Ann@Example.COM>"), "ann@example.com");
    }

    const DSN: &str = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n\
        Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\
        Diagnostic-Code: smtp; 550 5.1.1 unknown\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
        Message-ID: <0123456789abcdef0123@example.com>\r\nTo: a@b.example\r\n\r\nhi\r\n--b--\r\n";

    #[test]
    fn a_dsn_reads_whole_and_any_cut_of_it_reads_without_a_panic() {
        let whole = read(DSN.as_bytes());
        assert_eq!(
            whole.recipients,
            [Recipient {
                notice: Notice::HardBounce,
                address: "a@b.example".into(),
                status: "5.1.1".into(),
                diagnostic: "550 5.1.1 unknown".into(),
            }]
        );
        assert_eq!(
            whole.original_message_id.as_deref(),
            Some("<0123456789abcdef0123@example.com>")
        );
        for cut in 0..DSN.len() {
            let _ = read(&DSN.as_bytes()[..cut]);
        }
        // And bytes of no kind at all, from a fixed seed.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            let bytes: Vec<u8> = (0..512)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            let mut mixed = DSN.as_bytes()[..DSN.len() / 2].to_vec();
            mixed.extend_from_slice(&bytes);
            assert!(read(&bytes).recipients.is_empty());
            let _ = read(&mixed);
        }
    }

    #[test]
    fn garbage_is_no_report() {
        assert!(read(b"").recipients.is_empty());
        assert!(read(b"\xff\xfe\x00garbage").recipients.is_empty());
        let r = read(b"From: a@b.c\r\nSubject: Out of office\r\n\r\nI am away.\r\n");
        assert!(r.recipients.is_empty());
        assert!(r.problem.is_some());
    }
}
