//! The figures `/metrics` shows, through the `metrics` crate and its Prometheus
//! exporter: histograms of run lateness, SMTP send latency and HTTP latency, a
//! counter of attempts, and (set at each scrape) the runs by status. No label ever
//! carries a name, an address or a secret. The series names are the ones
//! dashboards already use.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const RUN_LATENESS: &str = "herald_run_lateness_seconds";
const SMTP_SEND: &str = "herald_smtp_send_seconds";
const HTTP_REQUEST: &str = "herald_http_request_seconds";
const RUN_ATTEMPTS: &str = "herald_run_attempts_total";
const RUNS: &str = "herald_runs";
const MAIL_REPORTS: &str = "herald_mail_reports_total";
const TRACKED: &str = "herald_opens_and_clicks_written_total";

const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const LATENESS_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 60.0, 600.0, 3600.0,
];

/// The process's recorder, installed on first use (every app of a process shares
/// it, as the figures are the process's).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(RUN_LATENESS.into()), LATENESS_BOUNDS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(SMTP_SEND.into()), LATENCY_BOUNDS))
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(HTTP_REQUEST.into()), LATENCY_BOUNDS)
            })
            .expect("bucket bounds are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows nothing");
        }
        describe_histogram!(RUN_LATENESS, "Time from a run's due time to its start.");
        describe_histogram!(
            SMTP_SEND,
            "Time to hand one email to the mail server (or the outbox)."
        );
        describe_histogram!(HTTP_REQUEST, "Time to answer an HTTP request.");
        describe_counter!(RUN_ATTEMPTS, "Attempts started by this process.");
        describe_counter!(TRACKED, "Opens and clicks written by this process.");
        describe_gauge!(RUNS, "Job runs by status.");
        describe_counter!(
            MAIL_REPORTS,
            "Bounces and complaints received, by kind and whether they matched an email."
        );
        // Every series shows from the start, before its first event.
        counter!(RUN_ATTEMPTS).absolute(0);
        for name in [RUN_LATENESS, SMTP_SEND, HTTP_REQUEST] {
            let _registered = histogram!(name);
        }
        // Histograms keep their samples until they are folded into buckets: fold
        // them every few seconds, scraped or not.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .expect("a thread");
        handle
    })
}

/// Installs the recorder: called once at start, before anything is recorded.
pub fn install() {
    handle();
}

/// A run started `late` after its due time.
pub fn run_started(late: Duration) {
    counter!(RUN_ATTEMPTS).increment(1);
    histogram!(RUN_LATENESS).record(late);
}

/// An email took `took` to hand to the mail server.
pub fn email_sent(took: Duration) {
    histogram!(SMTP_SEND).record(took);
}

/// A bounce or complaint of `kind` came in; `matched` when it named an email.
pub fn mail_report(kind: &'static str, matched: bool) {
    counter!(MAIL_REPORTS, "kind" => kind, "matched" => if matched { "yes" } else { "no" })
        .increment(1);
}

/// `n` opens and clicks were written.
pub fn tracked(n: usize) {
    counter!(TRACKED).increment(n as u64);
}

/// A request took `took` to answer.
pub fn request_answered(took: Duration) {
    histogram!(HTTP_REQUEST).record(took);
}

/// The Prometheus text, with `runs` (the count of each status) as `herald_runs`.
pub fn render(runs: impl IntoIterator<Item = (&'static str, i64)>) -> String {
    // Two apps of one process (tests) scrape their own databases: one at a time.
    static SCRAPE: Mutex<()> = Mutex::new(());
    let _one = SCRAPE.lock().unwrap_or_else(|e| e.into_inner());
    let handle = handle();
    for (status, n) in runs {
        gauge!(RUNS, "status" => status).set(n as f64);
    }
    handle.render()
}
