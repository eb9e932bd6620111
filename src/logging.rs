//! The log: one line per event on stderr, as logfmt (`log_format = text`, the
//! default) or as one JSON object (`log_format = json`) for a log shipper. Every
//! line has `time`, `level`, `target` and `msg`, then the event's fields, then the
//! fields of the spans it happened in, named `<span>_<field>` (`request_id`,
//! `run_id` …). Text from requests cannot forge a line: logfmt quotes a value with
//! spaces, quotes or `=` and writes control characters as escapes (`\n`,
//! `\u{1b}`); JSON escapes them by itself.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// logfmt: `time=… level=info target=herald::cli msg="listening" address=…`.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    pub fn parse(v: &str) -> Result<Self, String> {
        match v {
            "text" | "logfmt" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected text or json".into()),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

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

/// A logfmt value: bare when it can be, else in quotes with `\`, `"` and control
/// characters escaped (`\n`, `\u{1b}` …), so a value never ends its line or field.
fn logfmt_value(text: &str) -> String {
    let bare = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '"' | '=' | '\\'));
    if bare {
        return text.to_string();
    }
    let quoted = text.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{}\"", escape_controls(&quoted))
}

/// Starts logging to stderr with `filter`, in `format`.
pub fn init(filter: &str, format: LogFormat) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(false)
        .fmt_fields(SpanFields)
        .event_format(Lines(format))
        .with_writer(std::io::stderr)
        .try_init();
}

/// The fields of an event or a span, in order, as JSON values.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(String, Value)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.values.push((field.name().to_string(), value));
        }
    }
}

/// Spans keep their fields as a JSON object, read back when an event is written.
struct SpanFields;

impl<'writer> FormatFields<'writer> for SpanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visited = Fields::default();
        fields.record(&mut visited);
        let object: Map<String, Value> = visited.values.into_iter().collect();
        write!(writer, "{}", Value::Object(object))
    }
}

struct Lines(LogFormat);

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line: Vec<(String, Value)> = vec![
            (
                "time".into(),
                Value::from(
                    jiff::Timestamp::now()
                        .round(jiff::Unit::Millisecond)
                        .unwrap_or_else(|_| jiff::Timestamp::now())
                        .to_string(),
                ),
            ),
            (
                "level".into(),
                Value::from(meta.level().as_str().to_ascii_lowercase()),
            ),
            ("target".into(), Value::from(meta.target())),
            (
                "msg".into(),
                Value::from(fields.message.take().unwrap_or_default()),
            ),
        ];
        line.append(&mut fields.values);
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(stored) {
                    for (k, v) in object {
                        line.push((format!("{}_{k}", span.name()), v));
                    }
                }
            }
        }
        match self.0 {
            LogFormat::Json => {
                let object: Map<String, Value> = line.into_iter().collect();
                writeln!(writer, "{}", Value::Object(object))
            }
            LogFormat::Text => {
                let mut first = true;
                for (k, v) in line {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    if !first {
                        writer.write_char(' ')?;
                    }
                    first = false;
                    write!(writer, "{k}={}", logfmt_value(&text))?;
                }
                writeln!(writer)
            }
        }
    }
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

    #[test]
    fn logfmt_values_are_bare_or_quoted() {
        assert_eq!(logfmt_value("127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(logfmt_value("two words"), "\"two words\"");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("a=b"), "\"a=b\"");
        assert_eq!(logfmt_value("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(
            logfmt_value("x\nlevel=error forged\u{1b}"),
            "\"x\\nlevel=error forged\\u{1b}\""
        );
    }
}
