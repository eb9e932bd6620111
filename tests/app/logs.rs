//! The warnings and errors this test process logs, captured once for all tests
//! (lines of other tests mix in: look for what only the test at hand can log).

use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Starts capturing (warnings and up), once per process.
pub fn capture() {
    SINK.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // Another test's subscriber may be in place already; then this captures
        // nothing, and the assertions say so.
        let _ = tracing::subscriber::set_global_default(subscriber);
        sink
    });
}

/// The lines logged so far that hold every one of `words`.
pub fn lines_with(words: &[&str]) -> Vec<String> {
    let sink = SINK.get().expect("capture() first");
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).to_string();
    text.lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .map(str::to_string)
        .collect()
}
