//! The figures `/metrics` shows that this process keeps: histograms of run
//! lateness, SMTP send latency and HTTP latency, and a counter of attempts. No label
//! ever carries a name, an address or a secret.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A histogram with fixed buckets (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: [AtomicU64; 12],
    sum_micros: AtomicU64,
    total: AtomicU64,
}

const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
const LATENESS_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 60.0, 600.0, 3600.0,
];

impl Histogram {
    const fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: [const { AtomicU64::new(0) }; 12],
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the histogram in the Prometheus text format.
    pub fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// How late runs started after their due time.
pub static RUN_LATENESS: Histogram = Histogram::new(LATENESS_BOUNDS);
/// How long an email took to hand to the mail server.
pub static SMTP_SEND: Histogram = Histogram::new(LATENCY_BOUNDS);
/// How long requests took.
pub static HTTP_REQUEST: Histogram = Histogram::new(LATENCY_BOUNDS);
/// Attempts started.
pub static RUN_ATTEMPTS: AtomicU64 = AtomicU64::new(0);
