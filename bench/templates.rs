//! What bounding templates costs: a typical personalised message rendered the way
//! it was before (on the calling thread) and the way it is now (on the blocking
//! threads), in the same run; and the check at save, with and without the walk
//! that bounds what a template may allocate.
//!
//! cargo run --release --example bench-templates -- [renders]
//!
//! Prints one line `RESULT {json}` for `bench/run`.

use std::collections::BTreeMap;
use std::time::Instant;

use herald::messages::template::{self, ContactValues, Personal};

const TEXT: &str = "Hello {{ contact.first_name | default(\"there\") }},\n\n\
{% if contact.attributes.plan == \"pro\" %}Thanks for being a Pro customer.{% else %}Have a look at Pro.{% endif %}\n\
{% for item in event.data.items %}- {{ item.name | title }}: {{ item.price }}\n{% endfor %}\n\
Your preferences: {{ preferences_url }}\nUnsubscribe: {{ unsubscribe_url }}\n";

fn values() -> Personal {
    let mut attributes = BTreeMap::new();
    attributes.insert("plan".to_string(), "pro".to_string());
    Personal {
        contact: ContactValues {
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            attributes,
        },
        event: serde_json::json!({"data": {"items": [
            {"name": "tea", "price": 3}, {"name": "cake", "price": 4}, {"name": "scones", "price": 5}
        ]}}),
        preferences_url: "https://herald.example.com/preferences".into(),
        unsubscribe_url: "https://herald.example.com/u/c1.abc".into(),
    }
}

/// Microseconds per call of `f`, best of five rounds of `n`.
async fn per_call<F, Fut>(n: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f().await;
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    best
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map_or(Ok(20_000), |s| s.parse())?;
    let v = values();
    let sample = template::render(TEXT, &v, false).map_err(|e| anyhow::anyhow!(e.to_string()))?;
    assert!(sample.contains("Scones: 5"), "{sample}");
    let inline = per_call(n, || async {
        template::render(TEXT, &v, false).unwrap();
    })
    .await;
    let off = per_call(n, || {
        let v = v.clone();
        async move {
            template::off_async(move || template::render(TEXT, &v, false).unwrap()).await;
        }
    })
    .await;
    let check_before = per_call(n / 10, || async {
        // The check as it was: the syntax and names, and a render with no values.
        template::render(TEXT, &Personal::default(), false).unwrap();
    })
    .await;
    let check_now = per_call(n / 10, || async {
        template::check(TEXT).unwrap();
    })
    .await;
    let bomb = "{% set a = \"x\" * 100000000 %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}{{ d|length }}";
    let t = Instant::now();
    assert!(template::check(bomb).is_err());
    let bomb_refused_us = t.elapsed().as_secs_f64() * 1e6;
    println!(
        "render on the calling thread {inline:.1} µs, on the blocking threads {off:.1} µs ({:.2}×); \
         check {check_before:.1} → {check_now:.1} µs; the probe's template refused in {bomb_refused_us:.0} µs",
        off / inline
    );
    println!(
        "RESULT {}",
        serde_json::json!({
            "bench": "templates",
            "render_inline_us": inline,
            "render_off_async_us": off,
            "render_ratio": off / inline,
            "check_before_us": check_before,
            "check_now_us": check_now,
            "bomb_refused_us": bomb_refused_us,
        })
    );
    Ok(())
}
