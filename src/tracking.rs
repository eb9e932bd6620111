//! Opens and clicks of prepared messages. At send time every http(s) link of the
//! email (its HTML `<a href>` and its text) becomes `<base URL>/l/<token>` and the
//! HTML part gains a 1×1 image `<base URL>/o/<token>`; the token is signed and
//! names the delivery and the link's position, and the targets are kept with the
//! delivery ([`crate::deliveries`]'s `links`), so a click is sent only where the
//! email pointed and an altered token finds nothing. The unsubscribe and
//! preference links stay as they are. What a click or open was is written and
//! decided by [`crate::engagement`].

use crate::links::LinkSigner;

/// Makes and reads the tokens of tracked links and images.
#[derive(Clone, Debug)]
pub struct Tokens(LinkSigner);

/// What a token names: the delivery (its reference) and a link, or its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub reference: String,
    /// The link's position in the delivery's targets; `None`: the open image.
    pub position: Option<usize>,
}

impl Tokens {
    pub fn new(secret: &[u8]) -> Self {
        Self(LinkSigner::new(secret, "opens and clicks"))
    }

    /// The token of the link at `position` of the delivery `reference`.
    pub fn click(&self, reference: &str, position: usize) -> String {
        self.0.sign(&format!("{reference}-{position}"))
    }

    /// The token of the delivery's open image.
    pub fn open(&self, reference: &str) -> String {
        self.0.sign(&format!("{reference}-o"))
    }

    /// What a token Herald made names; `None` for anything else.
    pub fn read(&self, token: &str) -> Option<Named> {
        let (reference, what) = self.0.verify(token)?.split_once('-')?;
        let position = match what {
            "o" => None,
            n => Some(n.parse().ok()?),
        };
        Some(Named {
            reference: reference.to_string(),
            position,
        })
    }
}

/// An email's parts with their links tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracked {
    pub html: String,
    pub text: String,
    /// The targets, each once, in the order they first appear (a token's position).
    pub links: Vec<String>,
}

/// Whether `href` is a link Herald tracks: http(s), not one of `kept`.
fn tracks(href: &str, kept: &[&str]) -> bool {
    let lower = href.get(..8).unwrap_or(href).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://"))
        && !kept.iter().any(|k| !k.is_empty() && href == *k)
}

/// Tracks the links of an email to the delivery `reference`: each http(s) link
/// but those in `kept` (the unsubscribe and preference links) becomes a signed
/// link under `base` (with its trailing `/`); with `opens`, the HTML part gains
/// the open image. HTML that cannot be read is sent with its links as they are.
pub fn track(
    html: &str,
    text: &str,
    base: &str,
    tokens: &Tokens,
    reference: &str,
    kept: &[&str],
    opens: bool,
) -> Tracked {
    use std::cell::RefCell;
    let links: RefCell<Vec<String>> = RefCell::default();
    let link_of = |target: &str| -> String {
        let mut links = links.borrow_mut();
        let position = match links.iter().position(|l| l == target) {
            Some(p) => p,
            None => {
                links.push(target.to_string());
                links.len() - 1
            }
        };
        format!("{base}l/{}", tokens.click(reference, position))
    };
    let image = format!(
        r#"<img src="{base}o/{}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">"#,
        tokens.open(reference)
    );
    let html_out = if html.is_empty() {
        String::new()
    } else {
        let placed = std::cell::Cell::new(false);
        let rewritten = lol_html::rewrite_str(
            html,
            lol_html::RewriteStrSettings::new()
                .append_element_content_handler(lol_html::element!("a[href]", |el| {
                    let href = decoded(el.get_attribute("href").unwrap_or_default().trim());
                    if tracks(&href, kept) {
                        el.set_attribute("href", &link_of(&href))?;
                    }
                    Ok(())
                }))
                .append_element_content_handler(lol_html::element!("body", |el| {
                    if opens {
                        el.append(&image, lol_html::html_content::ContentType::Html);
                        placed.set(true);
                    }
                    Ok(())
                })),
        );
        match rewritten {
            Ok(mut out) => {
                if opens && !placed.get() {
                    out.push_str(&image);
                }
                out
            }
            Err(e) => {
                tracing::warn!(error = %e, "the HTML part could not be read: its links are not tracked");
                html.to_string()
            }
        }
    };
    let text_out = track_text(text, kept, &link_of);
    Tracked {
        html: html_out,
        text: text_out,
        links: links.into_inner(),
    }
}

/// An attribute's value as the browser reads it: `&amp;`, `&quot;`, `&apos;`,
/// `&lt;`, `&gt;` and numeric references decoded (the others are left as written).
fn decoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let read = rest.find(';').filter(|end| *end <= 10).and_then(|end| {
            let c = match &rest[1..end] {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, end))
        });
        match read {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text part with each http(s) URL (up to a space, `<`, `>` or a quote, less
/// a closing punctuation mark) replaced by its tracked link.
fn track_text(text: &str, kept: &[&str], link_of: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let lower = rest.to_ascii_lowercase();
        let at = [lower.find("http://"), lower.find("https://")]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = at else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at]);
        let url_and_more = &rest[at..];
        let end = url_and_more
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
            .unwrap_or(url_and_more.len());
        let url = url_and_more[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']);
        if url.len() > "https://".len() && tracks(url, kept) {
            out.push_str(&link_of(url));
        } else {
            out.push_str(url);
        }
        rest = &url_and_more[url.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(b"a secret key of some length")
    }

    #[test]
    fn attribute_values_are_decoded() {
        assert_eq!(decoded("a?x=1&amp;y=2&#38;z=&#x33;"), "a?x=1&y=2&z=3");
        assert_eq!(decoded("&unknown; & &amp"), "&unknown; & &amp");
    }

    #[test]
    fn tokens_name_their_link_and_refuse_changes() {
        let t = tokens();
        let click = t.click("0123456789abcdef0123", 2);
        assert_eq!(
            t.read(&click),
            Some(Named {
                reference: "0123456789abcdef0123".into(),
                position: Some(2)
            })
        );
        assert_eq!(t.read(&t.open("ab")).unwrap().position, None);
        let altered = click.replacen("-2", "-3", 1);
        assert_eq!(t.read(&altered), None);
        assert_eq!(t.read("nothing"), None);
        assert_eq!(
            Tokens::new(b"another key").read(&click),
            None,
            "another instance's secret"
        );
    }

    #[test]
    fn links_are_tracked_but_unsubscribe_mailto_and_anchors() {
        let t = tokens();
        let html = r##"<html><body><p><a href="https://shop.example/a?x=1&amp;y=2">A</a> <a href="HTTP://b.example/">B</a>
<a href="mailto:x@y.example">mail</a> <a href="#top">top</a> <a href="https://herald.example/u/tok">Unsubscribe</a>
<a href="https://shop.example/a?x=1&amp;y=2">A again</a></p></body></html>"##;
        let text = "Read https://shop.example/a?x=1&y=2, then (https://c.example/path). Stop: https://herald.example/u/tok";
        let out = track(
            html,
            text,
            "https://herald.example/",
            &t,
            "ref",
            &["https://herald.example/u/tok"],
            true,
        );
        assert_eq!(
            out.links,
            vec![
                "https://shop.example/a?x=1&y=2",
                "HTTP://b.example/",
                "https://c.example/path"
            ]
        );
        let first = format!("https://herald.example/l/{}", t.click("ref", 0));
        assert_eq!(out.html.matches(&first).count(), 2, "{}", out.html);
        assert!(out.html.contains("mailto:x@y.example"));
        assert!(out.html.contains(r##"href="#top""##));
        assert!(out.html.contains(r#"href="https://herald.example/u/tok""#));
        assert!(!out.html.contains("shop.example"));
        assert!(
            out.html.contains(&format!(
                r#"<img src="https://herald.example/o/{}""#,
                t.open("ref")
            )) && out.html.ends_with("</body></html>"),
            "{}",
            out.html
        );
        assert_eq!(
            out.text,
            format!(
                "Read {first}, then (https://herald.example/l/{}). Stop: https://herald.example/u/tok",
                t.click("ref", 2)
            )
        );
        let bare = track("<p>no body</p>", "", "https://h/", &t, "r", &[], true);
        assert!(bare.html.starts_with("<p>no body</p><img"), "{}", bare.html);
        let closed = track("<p>x</p>", "", "https://h/", &t, "r", &[], false);
        assert_eq!(closed.html, "<p>x</p>");
        assert_eq!(track("", "t", "https://h/", &t, "r", &[], true).html, "");
    }
}
