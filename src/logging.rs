//! The console log. Every field value — and the message — passes through one
//! escaping step before it is written, so text that came from a request (an email
//! typed at sign-in, a path, an address) cannot start a line of its own or carry
//! terminal escape codes: a line break shows as `\n`, an escape as `\u{1b}`.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format;

/// `text` with every control character written as an escape (`\n`, `\r`, `\t`,
/// `\u{…}`); everything else unchanged.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.into()
}

/// Starts logging to stderr with `filter` (colours only on a terminal).
pub fn init(filter: &str) {
    use std::io::IsTerminal;
    let fields = format::debug_fn(|writer, field, value| {
        let text = format!("{value:?}");
        let text = escape_controls(&text);
        if field.name() == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{field}={text}")
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::stderr().is_terminal())
        .fmt_fields(fields)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_escapes() {
        assert_eq!(escape_controls("ann@example.com"), "ann@example.com");
        assert_eq!(
            escape_controls("x\n2026-11-27 INFO herald::audit forged\r\u{1b}[2J\t"),
            "x\\n2026-11-27 INFO herald::audit forged\\r\\u{1b}[2J\\t"
        );
    }
}
