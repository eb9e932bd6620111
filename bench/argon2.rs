//! The password pipeline's reference: raw argon2id hashes per second with Herald's
//! own crate versions (argon2 0.6, rand 0.10) and Herald's argon2id parameters (README, Security in short)
//! (m = 19,456 KiB, t = 2, p = 1), one reused memory block per thread — the shared
//! anchor program `argon2bench` with `REUSE=1`, ported to those versions.
//!
//! cargo run --release --example bench-argon2 -- [threads] [seconds]

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngExt;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let secs: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let duration = Duration::from_secs_f64(secs);
    let params = Params::new(19_456, 2, 1, Some(32)).expect("valid parameters");
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let params = params.clone();
            std::thread::spawn(move || {
                let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let mut blocks = vec![Block::default(); hasher.params().block_count()];
                let mut rng = rand::rng();
                let mut n = 0u64;
                let t0 = Instant::now();
                while t0.elapsed() < duration {
                    let password: Vec<u8> = (0..16)
                        .map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())])
                        .collect();
                    let salt: [u8; 16] = rng.random();
                    let mut out = [0u8; 32];
                    hasher
                        .hash_password_into_with_memory(&password, &salt, &mut out, &mut blocks)
                        .expect("argon2 inputs are in range");
                    std::hint::black_box(out);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = workers
        .into_iter()
        .map(|w| w.join().expect("hashing thread"))
        .sum();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "threads={threads} hashes={total} elapsed_s={elapsed:.3} hashes_per_s={:.2}",
        total as f64 / elapsed
    );
}
