//! Password hashing (argon2id, PHC strings) on a few dedicated threads, each reusing
//! one argon2 memory block, and the generator of temporary passwords.
//!
//! Dedicated threads rather than `spawn_blocking`: their number caps how many hashes
//! run at once (the semaphore of the architecture notes), and each keeps its 19 MiB
//! block for its whole life instead of allocating one per hash (~10× less
//! resident memory, and faster). Sign-ins queue ahead of background work, so pages
//! stay fast while the scheduler hashes flat out.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngExt;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// A plaintext password: printed as `[redacted]`, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(String);

impl Plaintext {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Who is waiting for a hash: people at a sign-in page go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Interactive,
    Background,
}

enum Work {
    Hash(Plaintext, oneshot::Sender<String>),
    Verify(Plaintext, Option<String>, oneshot::Sender<bool>),
}

#[derive(Default)]
struct Queues {
    interactive: VecDeque<Work>,
    background: VecDeque<Work>,
    closed: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    /// Verifications done since start (tests count them: every sign-in costs the same).
    verifications: AtomicU64,
}

/// Hashes and verifies passwords off the async threads.
#[derive(Clone)]
pub struct PasswordHasher {
    shared: Arc<Shared>,
    /// Turns for background work: two per thread (see [`PasswordHasher::turn`]).
    turns: Arc<tokio::sync::Semaphore>,
    _guard: Arc<CloseOnDrop>,
}

/// A place among the next background hashes; given back when dropped.
pub struct Turn(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

/// Closes the queues when the last [`PasswordHasher`] handle goes.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Ok(mut q) = self.0.queues.lock() {
            q.closed = true;
        }
        self.0.ready.notify_all();
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHasher")
    }
}

/// OWASP's minimum (README, Security in short): argon2id, m=19456 KiB, t=2, p=1.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).expect("valid argon2 parameters")
}

impl PasswordHasher {
    /// Starts `threads` hashing threads; they stop when the last handle is dropped
    /// (or at [`shutdown`](Self::shutdown)), after finishing the queued work. A
    /// thread allocates its argon2 memory at its first hash, so an idle Herald
    /// holds none.
    pub fn start(threads: usize) -> Self {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            verifications: AtomicU64::new(0),
        });
        let guard = Arc::new(CloseOnDrop(Arc::clone(&shared)));
        for i in 0..threads.max(1) {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("herald-hash-{i}"))
                .spawn(move || worker(&shared))
                .expect("spawn hashing thread");
        }
        Self {
            shared,
            turns: Arc::new(tokio::sync::Semaphore::new(2 * threads.max(1))),
            _guard: guard,
        }
    }

    /// Waits for a place among the next background hashes (two per thread: one
    /// hashing, one ready behind it). The scheduler's password runs take one before
    /// they look anything up and give it back once hashed, so only the runs about
    /// to be hashed do their database work — not every run it claimed at once, which
    /// filled the connection pool ahead of the pages (BENCHMARKS.md) — and a run's
    /// target is checked right before its password is made.
    pub async fn turn(&self) -> Turn {
        let permit = Arc::clone(&self.turns).acquire_owned().await;
        // The semaphore is never closed.
        Turn(permit.expect("hash turns are never closed"))
    }

    fn submit(&self, priority: Priority, work: Work) {
        let mut q = self.shared.queues.lock().expect("hash queue");
        match priority {
            Priority::Interactive => q.interactive.push_back(work),
            Priority::Background => q.background.push_back(work),
        }
        drop(q);
        self.shared.ready.notify_one();
    }

    /// The PHC string of a fresh argon2id hash of `password`.
    /// Fails only while Herald shuts down.
    pub async fn hash(&self, password: &Plaintext, priority: Priority) -> anyhow::Result<String> {
        let (tx, rx) = oneshot::channel();
        self.submit(priority, Work::Hash(password.clone(), tx));
        rx.await
            .map_err(|_| anyhow::anyhow!("password hashing has stopped (shutting down)"))
    }

    /// Whether `password` matches `phc`. With no hash (unknown account) it verifies
    /// against a dummy hash and answers `false`, taking the same time.
    pub async fn verify(
        &self,
        password: &Plaintext,
        phc: Option<&str>,
        priority: Priority,
    ) -> bool {
        let (tx, rx) = oneshot::channel();
        self.submit(
            priority,
            Work::Verify(password.clone(), phc.map(str::to_string), tx),
        );
        rx.await.unwrap_or(false)
    }

    /// How many verifications the threads have done (real or against the dummy hash).
    pub fn verifications(&self) -> u64 {
        self.shared.verifications.load(Ordering::Relaxed)
    }

    /// Stops the threads once their queues are empty.
    pub fn shutdown(&self) {
        self.shared.queues.lock().expect("hash queue").closed = true;
        self.shared.ready.notify_all();
    }
}

fn worker(shared: &Shared) {
    yield_to_pages();
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let work = {
            let mut q = shared.queues.lock().expect("hash queue");
            loop {
                if let Some(w) = q
                    .interactive
                    .pop_front()
                    .or_else(|| q.background.pop_front())
                {
                    break w;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).expect("hash queue");
            }
        };
        match work {
            Work::Hash(pw, reply) => {
                let _ = reply.send(hash_with(&mut memory, pw.expose()));
            }
            Work::Verify(pw, phc, reply) => {
                shared.verifications.fetch_add(1, Ordering::Relaxed);
                let ok = match phc {
                    Some(phc) => verify_with(&mut memory, pw.expose(), &phc),
                    None => {
                        verify_with(&mut memory, pw.expose(), dummy_hash());
                        false
                    }
                };
                let _ = reply.send(ok);
            }
        }
    }
}

/// Lowers this hashing thread's priority (nice 10, Linux): when the scheduler hashes
/// flat out, the threads serving pages and the database get a core as soon as they
/// wake, and hashing takes whatever is left (BENCHMARKS.md: page p99 on PostgreSQL
/// 103 → 65 ms while 2,000 passwords are made, throughput unchanged).
fn yield_to_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments; `who` 0 is the calling
    // thread on Linux, where the nice value is per thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// A hash of a random password, verified against for unknown accounts.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_with(&mut Vec::new(), generate(24).expose()))
}

fn hash_with(memory: &mut Vec<Block>, password: &str) -> String {
    let params = params();
    let n = params.block_count();
    if memory.len() < n {
        memory.resize(n, Block::default());
    }
    let mut salt = [0u8; 16];
    rand::rng().fill(&mut salt);
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, &mut memory[..n])
        .expect("argon2 inputs are in range");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("params encode"),
        salt: Some(Salt::new(&salt).expect("salt length")),
        hash: Some(Output::new(&out).expect("output length")),
    }
    .to_string()
}

fn verify_with(memory: &mut Vec<Block>, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(params), Ok(algorithm), Some(salt), Some(expected)) = (
        Params::try_from(&parsed),
        Algorithm::try_from(parsed.algorithm.as_str()),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let n = params.block_count();
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            &mut memory[..n],
        )
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_ref()))
}

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"!#%+-=?@_*";

/// A random password of `len` characters (at least 4) from an alphabet without
/// look-alikes (no 0 O 1 l I), with at least one lower-case letter, upper-case
/// letter, digit and symbol. Uses the thread-local CSPRNG.
pub fn generate(len: usize) -> Plaintext {
    let len = len.max(4);
    let alphabet: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    let mut rng = rand::rng();
    loop {
        let pw: String = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
            .collect();
        let has = |set: &[u8]| pw.bytes().any(|b| set.contains(&b));
        if has(LOWER) && has(UPPER) && has(DIGITS) && has(SYMBOLS) {
            return Plaintext(pw);
        }
    }
}

/// Length of generated temporary passwords (the default).
pub const TEMP_PASSWORD_LENGTH: usize = 16;
/// The shortest password a system user may choose.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Temporary credential fields as stored for staff and contacts.
pub fn usable_temp(
    hash: Option<&str>,
    expires_at: Option<i64>,
    used_at: Option<i64>,
    now_ms: i64,
) -> Option<&str> {
    match (hash, expires_at, used_at) {
        (Some(h), Some(exp), None) if exp > now_ms => Some(h),
        _ => None,
    }
}

/// Verifies a sign-in against an account's permanent password and its usable
/// temporary one. Every attempt costs exactly two argon2 verifications, whatever the
/// account's state: a missing hash (unknown, disabled or blocked account — `None` —,
/// no password yet, no pending temporary password) is checked against a dummy hash,
/// so the answer's timing reveals neither the account nor a pending temporary
/// password. Returns (verified, with the temporary password).
pub async fn verify_sign_in(
    hasher: &PasswordHasher,
    password: &Plaintext,
    account: Option<(Option<&str>, Option<&str>)>,
) -> (bool, bool) {
    let (permanent, temporary) = account.unwrap_or((None, None));
    let (permanent_ok, temporary_ok) = futures_util::future::join(
        hasher.verify(password, permanent, Priority::Interactive),
        hasher.verify(password, temporary, Priority::Interactive),
    )
    .await;
    (permanent_ok || temporary_ok, !permanent_ok && temporary_ok)
}

/// The one message for every failed sign-in, whatever the reason.
pub const SIGN_IN_FAILED: &str = "The email or password is not right. Check both and try again.";

/// Checks a chosen password against the password policy: at least `min`
/// characters, not the email.
pub fn check_new_password(new: &str, email: &str, min: usize) -> Result<(), String> {
    let n = new.chars().count();
    if n < min {
        return Err(format!("Use at least {min} characters."));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!("Use at most {MAX_PASSWORD_CHARS} characters."));
    }
    if new.trim().eq_ignore_ascii_case(email) {
        return Err("Your password cannot be your email address.".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_meet_the_policy() {
        for len in [4, 12, 16, 64] {
            for _ in 0..200 {
                let pw = generate(len);
                let s = pw.expose();
                assert_eq!(s.len(), len);
                assert!(!s.contains(['0', 'O', '1', 'l', 'I']), "{s}");
                assert!(s.bytes().any(|b| LOWER.contains(&b)));
                assert!(s.bytes().any(|b| UPPER.contains(&b)));
                assert!(s.bytes().any(|b| DIGITS.contains(&b)));
                assert!(s.bytes().any(|b| SYMBOLS.contains(&b)));
            }
        }
        assert_ne!(generate(16), generate(16));
        assert_eq!(format!("{:?}", generate(16)), "[redacted]");
    }

    #[test]
    fn hashes_are_argon2id_phc_that_verify() {
        let mut memory = Vec::new();
        let phc = hash_with(&mut memory, "correct horse");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_with(&mut memory, "correct horse", &phc));
        assert!(!verify_with(&mut memory, "correct horsf", &phc));
        assert!(!verify_with(&mut memory, "x", "not a hash"));
        // Hashes made by the crate's own API verify too (and the other way round).
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = Argon2::default()
            .hash_password(b"pw-from-crate")
            .unwrap()
            .to_string();
        assert!(verify_with(&mut memory, "pw-from-crate", &theirs));
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", phc.as_str())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_pool_hashes_and_verifies() {
        let hasher = PasswordHasher::start(2);
        let pw = Plaintext::new("a long passphrase");
        let phc = hasher.hash(&pw, Priority::Background).await.unwrap();
        assert!(hasher.verify(&pw, Some(&phc), Priority::Interactive).await);
        assert!(
            !hasher
                .verify(&Plaintext::new("wrong"), Some(&phc), Priority::Interactive)
                .await
        );
        assert!(!hasher.verify(&pw, None, Priority::Interactive).await);
        hasher.shutdown();
    }

    #[tokio::test]
    async fn background_work_takes_turns_two_per_thread() {
        let hasher = PasswordHasher::start(1);
        let first = hasher.turn().await;
        let _second = hasher.turn().await;
        let third = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.turn().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            !third.is_finished(),
            "a third turn waits while two are taken"
        );
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), third)
            .await
            .expect("a turn given back goes to the one waiting")
            .unwrap();
        hasher.shutdown();
    }
}
