//! Values read from the database that hot paths may reuse for a moment: the API's
//! key look-up and its rate-limit setting are read on every call otherwise. An
//! entry is trusted for [`FRESH`] at most, and not at all once this process saved
//! a change to what it holds (a generation counter the writer bumps), so a change
//! made here is seen at once and one made by another instance within a second.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an entry is trusted.
pub const FRESH: Duration = Duration::from_secs(1);
/// Entries kept at most; past it the cache starts afresh.
const MAX_ENTRIES: usize = 1024;

/// Counts the changes saved by this process to one kind of data.
#[derive(Default)]
pub struct Generation(AtomicU64);

impl Generation {
    pub const fn new() -> Self {
        Self(AtomicU64::new(0))
    }
    /// Call after saving a change: cached copies are no longer trusted.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A small map of recently read values, each trusted for [`FRESH`] and only while
/// its generation is current.
pub struct Recent<K, V> {
    generation: &'static Generation,
    entries: Mutex<HashMap<K, (u64, Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    pub fn new(generation: &'static Generation) -> Self {
        Self {
            generation,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value kept for `key`, while fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let current = self.generation.current();
        let entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((g, at, v)) if *g == current && at.elapsed() < FRESH => Some(v.clone()),
            _ => None,
        }
    }

    /// Keeps `value`, read at a moment when the generation was `generation` (read
    /// it before the database, so a change saved meanwhile is not hidden).
    pub fn put(&self, key: K, generation: u64, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (generation, Instant::now(), value));
        }
    }

    /// The value kept for `key` while fresh, else what `load` reads (then kept).
    pub async fn get_or_load<E>(
        &self,
        key: K,
        load: impl AsyncFnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let generation = self.generation();
        let v = load().await?;
        self.put(key, generation, v.clone());
        Ok(v)
    }

    /// The generation now, to pass to [`put`](Self::put).
    pub fn generation(&self) -> u64 {
        self.generation.current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CHANGES: Generation = Generation::new();

    #[test]
    fn a_value_is_kept_until_a_change_is_saved() {
        let cache: Recent<&str, i64> = Recent::new(&CHANGES);
        assert_eq!(cache.get(&"limit"), None);
        cache.put("limit", cache.generation(), 60);
        assert_eq!(cache.get(&"limit"), Some(60));
        CHANGES.bump();
        assert_eq!(cache.get(&"limit"), None, "a change was saved");
        let before = cache.generation();
        CHANGES.bump();
        cache.put("limit", before, 61);
        assert_eq!(
            cache.get(&"limit"),
            None,
            "read before the change: not trusted"
        );
        cache.put("limit", cache.generation(), 62);
        std::thread::sleep(FRESH);
        assert_eq!(cache.get(&"limit"), None, "no longer fresh");
    }
}
