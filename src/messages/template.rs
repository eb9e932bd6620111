//! Personalisation of prepared messages with minijinja, a sandboxed runtime template
//! engine: staff write `{{ contact.first_name | default("there") }}`; Herald checks
//! the template when it is saved and renders it for each contact when it is sent.
//! Values are HTML-escaped in the HTML part; rendering is bounded by fuel, so a
//! template cannot loop for ever, and by what it may allocate, checked at save
//! ([`super::bounds`]).

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

/// The names a template may use at the top level.
pub const TOP_LEVEL: [&str; 4] = ["contact", "event", "preferences_url", "unsubscribe_url"];
/// The fields of `contact`.
pub const CONTACT_FIELDS: [&str; 4] = ["email", "first_name", "last_name", "attributes"];

pub use super::template_error::TemplateError;
use super::template_error::unreadable;

/// What a message is rendered with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Personal {
    pub contact: ContactValues,
    /// The event's parameters (`{{ event.name }}`, `{{ event.created }}` …).
    pub event: serde_json::Value,
    pub preferences_url: String,
    pub unsubscribe_url: String,
}

/// The contact's values a template may use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContactValues {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub attributes: BTreeMap<String, String>,
}

fn environment(escape: AutoEscape) -> Environment<'static> {
    let mut env = Environment::new();
    // Missing attributes and event parameters (nested ones too: event.data.order)
    // render empty, or their default().
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(move |_| escape);
    env.set_fuel(Some(100_000));
    env.set_recursion_limit(50);
    // debug() prints the whole context: nothing a message needs.
    env.remove_global("debug");
    env
}

/// The line of the first mention of `name` in `source` (1 when not found).
pub fn line_of(source: &str, name: &str) -> usize {
    source
        .lines()
        .position(|l| l.contains(name))
        .map_or(1, |i| i + 1)
}

/// Checks a template as staff saved it: its syntax, and that it names only the
/// top-level names and contact fields Herald provides.
pub fn check(source: &str) -> Result<(), TemplateError> {
    for name in used_names(source)? {
        let mut parts = name.split('.');
        let top = parts.next().unwrap_or_default();
        if !TOP_LEVEL.contains(&top) {
            return Err(TemplateError {
                line: line_of(source, top),
                message: format!(
                    "{top:?} is not a name Herald knows: use contact, event, preferences_url or unsubscribe_url."
                ),
            });
        }
        if top == "contact"
            && let Some(field) = parts.next()
            && !CONTACT_FIELDS.contains(&field)
        {
            return Err(TemplateError {
                line: line_of(source, &name),
                message: format!(
                    "contact.{field} is not a contact field: use email, first_name, last_name or attributes.<name>."
                ),
            });
        }
    }
    // What only shows when rendering (an include of nothing, a loop without end…).
    render(source, &Personal::default(), false).map(|_| ())
}

/// The values a template names (`contact.first_name`, `password`), sorted, once
/// its syntax and what it may allocate are checked; built-in functions (range,
/// dict…) left out.
pub fn used_names(source: &str) -> Result<Vec<String>, TemplateError> {
    // What it can allocate, whatever the contact or event (minijinja counts
    // instructions, not bytes) — first: compiling folds constants, and
    // `"x" * 100000000` alone would make its 100 MB there.
    super::bounds::check(source)?;
    let env = environment(AutoEscape::None);
    let template = env.template_from_str(source).map_err(unreadable)?;
    let mut names: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|name| {
            let top = name.split('.').next().unwrap_or_default();
            !env.globals().any(|(global, _)| global == top)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Runs template work (a check, a preview) on the blocking threads, not on the
/// async workers that serve pages: a rendering within the bounds of
/// [`super::bounds`] may still copy up to a gigabyte. Jobs render on the
/// scheduler's own threads, which serve no page, without it: the hand-over costs
/// ~40 µs, four times a typical message's rendering (BENCHMARKS.md).
pub async fn off_async<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The most a rendered part may hold.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// Collects output up to [`MAX_OUTPUT_BYTES`], then refuses more.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT_BYTES {
            return Err(std::io::Error::other("the message is larger than 1 MiB"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders a checked template; `html` escapes every value for HTML. The output is
/// bounded (1 MiB), like the work (fuel).
pub fn render(source: &str, values: &impl Serialize, html: bool) -> Result<String, TemplateError> {
    let escape = if html {
        AutoEscape::Html
    } else {
        AutoEscape::None
    };
    render_with(source, values, escape)
}

/// Renders a checked template whose every value is written as JSON (a string in
/// quotes, a number as it is), so values cannot break the document's structure.
pub fn render_json(source: &str, values: &Personal) -> Result<String, TemplateError> {
    render_with(source, values, AutoEscape::Json)
}

fn render_with(
    source: &str,
    values: &impl Serialize,
    escape: AutoEscape,
) -> Result<String, TemplateError> {
    let failed = |e: minijinja::Error| TemplateError {
        line: e.line().unwrap_or(1),
        message: match e.kind() {
            minijinja::ErrorKind::WriteFailure => "the message is larger than 1 MiB".to_string(),
            _ => e
                .detail()
                .unwrap_or("the template could not be rendered")
                .to_string(),
        },
    };
    let env = environment(escape);
    let template = env.template_from_str(source).map_err(failed)?;
    let mut out = Bounded(Vec::new());
    template
        .render_captured_to(values, &mut out)
        .map_err(failed)?;
    String::from_utf8(out.0).map_err(|_| TemplateError {
        line: 1,
        message: "the message is not valid text".into(),
    })
}

/// An HTML body made from a text body: escaped, paragraphs and line breaks kept.
pub fn html_from_text(text: &str) -> String {
    let escaped = askama::filters::escape(text, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default();
    escaped
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", p.trim().replace('\n', "<br>\n")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Personal {
        Personal {
            contact: ContactValues {
                email: "ada@example.com".into(),
                first_name: "Ada".into(),
                last_name: "Lovelace".into(),
                attributes: BTreeMap::from([("city".into(), "London".into())]),
            },
            event: serde_json::json!({ "name": "order <shipped>" }),
            preferences_url: "https://p.example/preferences".into(),
            unsubscribe_url: "https://p.example/u/x".into(),
        }
    }

    #[test]
    fn debug_is_not_offered_to_templates() {
        assert!(check("{{ debug() }}").is_err());
        assert!(render("{{ debug() }}", &Personal::default(), false).is_err());
    }

    #[test]
    fn templates_are_checked_with_their_line() {
        assert_eq!(
            check("Hello {{ contact.first_name | default(\"there\") }}"),
            Ok(())
        );
        assert_eq!(
            check("{{ contact.attributes.city }} {{ event.anything }}"),
            Ok(())
        );
        let e = check("Hello\n{{ contact.first_name }\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = check("Hi\n\n{{ customer.name }}").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("customer"), "{e}");
        let e = check("{{ contact.phone }}").unwrap_err();
        assert!(e.message.contains("contact.phone"), "{e}");
        assert!(
            check("{% include \"other\" %}").is_err(),
            "found when rendering"
        );
        let e = check("{% for i in range(1000) %}{{ \"x\" * 100000 }}{% endfor %}").unwrap_err();
        assert!(e.message.contains("larger than 1 MiB"), "{e}");
        assert!(
            check(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
            )
            .is_err()
        );
    }

    #[test]
    fn values_are_escaped_in_html_only_and_missing_ones_are_empty() {
        let text = "{{ contact.first_name }} {{ event.name }} {{ contact.attributes.zip }}|";
        assert_eq!(
            render(text, &ada(), false).unwrap(),
            "Ada order <shipped> |"
        );
        assert_eq!(
            render(text, &ada(), true).unwrap(),
            "Ada order &lt;shipped&gt; |"
        );
        let fallback = "Hello {{ contact.attributes.nick | default(\"there\") }}";
        assert_eq!(render(fallback, &ada(), false).unwrap(), "Hello there");
        assert!(
            render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &ada(),
                false
            )
            .is_err(),
            "bounded"
        );
        assert_eq!(
            html_from_text("Hi <b>\nthere\n\nBye"),
            "<p>Hi &#60;b&#62;<br>\nthere</p>\n<p>Bye</p>"
        );
    }
}
