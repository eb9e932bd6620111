//! A real browser for the journeys: Debian's Chromium, headless, driven over
//! WebDriver by chromedriver (one per test, on a free port, with a fresh profile).
//! Every page a journey passes is checked with axe-core (no serious or critical
//! violation), the browser's console must stay free of errors (a CSP refusal, a
//! failed load, a script error), and a PNG of it is kept at 1280 and 375 px under
//! `target/screenshots/`.
//!
//! Without chromedriver, chromium or axe-core the journeys say so and pass, except
//! with `CI=true`, where they fail: `.ci/run` installs all three. axe-core is the npm
//! package, read from `HERALD_AXE_JS` (default
//! `/var/tmp/herald-axe-4.14/node_modules/axe-core/axe.min.js`), never fetched at run time.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// The viewport widths screenshots are taken at.
pub const WIDE: u32 = 1280;
pub const NARROW: u32 = 375;
const HEIGHT: u32 = 900;

fn axe_path() -> PathBuf {
    std::env::var_os("HERALD_AXE_JS").map_or_else(
        || PathBuf::from("/var/tmp/herald-axe-4.14/node_modules/axe-core/axe.min.js"),
        PathBuf::from,
    )
}

/// What the suite needs, or why it cannot run.
fn missing() -> Option<String> {
    for program in ["chromedriver", "chromium"] {
        let found = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        });
        if !found {
            return Some(format!(
                "{program} is not installed (apt-get install chromium chromium-driver)"
            ));
        }
    }
    if !axe_path().is_file() {
        return Some(format!(
            "axe-core is not at {} (npm install --prefix /var/tmp/herald-axe-4.14 axe-core@4.14, or set HERALD_AXE_JS)",
            axe_path().display()
        ));
    }
    None
}

/// A browser session (and its chromedriver), closed when dropped.
pub struct Browser {
    pub client: Client,
    base: String,
    driver_url: String,
    session: String,
    journey: String,
    shots: usize,
    axe: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium at `width` px for the app at `base`; `None` (with a note)
    /// where the suite cannot run outside CI.
    pub async fn start(base: &str, journey: &str, width: u32) -> Option<Self> {
        if let Some(why) = missing() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the browser suite cannot run: {why}"
            );
            crate::helpers::skipped_once(
                "Browser (Chromium)",
                &format!("{why}; .ci/run installs all of it (first journey: {journey})"),
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let driver_url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{HEIGHT}"),
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut client = None;
        for _ in 0..100 {
            match ClientBuilder::new(connector.clone())
                .capabilities(caps.clone())
                .connect(&driver_url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let client = client.expect("chromedriver opens a session within 10 s");
        client.set_window_size(width, HEIGHT).await.unwrap();
        let session = client.session_id().await.unwrap().unwrap();
        Some(Self {
            client,
            base: base.to_string(),
            driver_url,
            session,
            journey: journey.to_string(),
            shots: 0,
            axe: std::fs::read_to_string(axe_path()).unwrap(),
            _driver: driver,
            _profile: profile,
        })
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("{css} not found on {}: {e}", self.url().await),
        }
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map_or_else(|_| "?".into(), |u| u.path().to_string())
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        // As a person would: scrolled to the middle of the window first (at once:
        // Bootstrap's smooth scrolling would still be moving when the click lands).
        self.client
            .execute(
                "arguments[0].scrollIntoView({ block: 'center', behavior: 'instant' })",
                vec![serde_json::to_value(&element).unwrap()],
            )
            .await
            .unwrap();
        if let Err(e) = element.click().await {
            let over = self
                .client
                .execute(
                    "const r = arguments[0].getBoundingClientRect();
                     const top = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
                     return [r.x, r.y, window.innerWidth, window.innerHeight, top ? top.outerHTML.slice(0, 300) : null];",
                    vec![serde_json::to_value(&element).unwrap()],
                )
                .await
                .unwrap_or_default();
            panic!(
                "clicking {css} on {} failed: {e}; in its place: {over}",
                self.url().await
            );
        }
    }

    /// Marks the page, so that [`Self::next_page`] can tell a new one.
    async fn mark_page(&self) {
        let before = self
            .client
            .execute(
                "return document.documentElement.dataset.herald = 'old'",
                vec![],
            )
            .await;
        drop(before);
    }

    /// Waits for a page other than the one marked (`what` led to it).
    async fn next_page(&self, what: &str) {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("html:not([data-herald])"))
            .await
            .unwrap_or_else(|e| panic!("no new page after {what}: {e}"));
    }

    /// Clicks `css` and waits for the next page.
    pub async fn click_and_wait(&self, css: &str) {
        self.mark_page().await;
        self.click(css).await;
        self.next_page(&format!("clicking {css}")).await;
    }

    /// Presses Enter in the element `css` and waits for the page it submits to.
    pub async fn press_enter_and_wait(&self, css: &str) {
        self.mark_page().await;
        self.find(css).await.send_keys("\u{E007}").await.unwrap();
        self.next_page(&format!("Enter in {css}")).await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn is_enabled(&self, css: &str) -> bool {
        self.find(css).await.is_enabled().await.unwrap()
    }

    /// The id of the element that has the focus.
    pub async fn focused(&self) -> String {
        self.client
            .execute(
                "return document.activeElement ? document.activeElement.id : ''",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Whether `css` is shown.
    pub async fn is_displayed(&self, css: &str) -> bool {
        self.find(css).await.is_displayed().await.unwrap()
    }

    /// Presses Tab `times` times, as a keyboard user moves on.
    pub async fn tab(&self, times: usize) {
        let tab: char = fantoccini::key::Key::Tab.into();
        for _ in 0..times {
            let active = self.client.active_element().await.unwrap();
            active.send_keys(&tab.to_string()).await.unwrap();
        }
    }

    /// The focused element's id or text, and the contrast of its focus outline
    /// against the background behind it (WCAG ratio; 0 without an outline).
    pub async fn focus_ring(&self) -> (String, f64) {
        let v = self
            .client
            .execute(
                "const el = document.activeElement;
                 const cs = getComputedStyle(el);
                 const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
                 const lum = ([r, g, b]) => [r, g, b].map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); })
                   .reduce((s, x, i) => s + x * [0.2126, 0.7152, 0.0722][i], 0);
                 let bg = el.parentElement, back = [255, 255, 255];
                 while (bg) { const c = rgb(getComputedStyle(bg).backgroundColor); if (c.length >= 3 && (c.length < 4 || c[3] > 0)) { back = c; break; } bg = bg.parentElement; }
                 const width = parseFloat(cs.outlineWidth) || 0;
                 if (cs.outlineStyle === 'none' || width < 2) return [el.id || el.textContent.trim(), 0];
                 const [a, b] = [lum(rgb(cs.outlineColor)), lum(back)];
                 return [el.id || el.textContent.trim(), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];",
                vec![],
            )
            .await
            .unwrap();
        (
            v[0].as_str().unwrap_or_default().to_string(),
            v[1].as_f64().unwrap_or_default(),
        )
    }

    /// Resizes the window (CSS pixels).
    pub async fn width(&self, width: u32) {
        self.client.set_window_size(width, HEIGHT).await.unwrap();
    }

    /// The browser's console errors since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let logs: Value = reqwest::Client::new()
            .post(format!(
                "{}/session/{}/se/log",
                self.driver_url, self.session
            ))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        logs["value"]
            .as_array()
            .expect("the browser log")
            .iter()
            .filter(|l| l["level"] == "SEVERE")
            // A form answered 422 with its messages is the page working as meant
            // (Chrome logs every 4xx document as a failed load).
            .filter(|l| {
                !l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("status of 422"))
            })
            .map(|l| l["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// axe-core's serious and critical violations on the page as it is now.
    async fn violations(&self) -> Vec<String> {
        self.client.execute(&self.axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then((r) => done(
                   r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
                     .map((v) => v.impact + ' ' + v.id + ': ' + v.help + ' — ' +
                       v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' (' + (n.failureSummary || '').replace(/\\s+/g, ' ') + ')').join('; '))));",
                vec![],
            )
            .await
            .unwrap();
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Checks the page as it is now — no console error; at 1280 and at 375 px no
    /// serious or critical axe violation and no sideways scrolling — and keeps its
    /// screenshot at both widths as `name`.
    pub async fn check(&mut self, name: &str) {
        let errors = self.console_errors().await;
        assert!(
            errors.is_empty(),
            "{name} ({}): console errors: {errors:#?}",
            self.url().await
        );
        self.shots += 1;
        let (w, _) = self.client.get_window_size().await.unwrap();
        for width in [WIDE, NARROW] {
            self.width(width).await;
            // axe at both widths: a phone shows other layouts (and scroll regions).
            let violations = self.violations().await;
            assert!(
                violations.is_empty(),
                "{name} ({}) at {width} px: axe found serious or critical violations:\n{}",
                self.url().await,
                violations.join("\n")
            );
            let (page, window) = self.overflow().await;
            assert!(
                page <= window,
                "{name} ({}): the page scrolls sideways at {width} px ({page} px wide)",
                self.url().await
            );
            let png = self.client.screenshot().await.unwrap();
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!(
                "{}-{:02}-{name}-{width}.png",
                self.journey, self.shots
            ));
            std::fs::write(file, png).unwrap();
        }
        self.width(w as u32).await;
    }

    /// The page's width in CSS pixels against the window's (sideways scrolling).
    pub async fn overflow(&self) -> (i64, i64) {
        let v = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await
            .unwrap();
        (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
