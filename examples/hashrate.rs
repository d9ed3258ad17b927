//! The hardware limit of layer work on this machine: SHA-256 and AES-256-CTR throughput of one
//! core, with the same crates and build profile as layercrypt itself. `scripts/bench-image.sh`
//! divides the image size by these rates to compute how close a run comes to the limit.
//!
//! Prints `sha256 BYTES_PER_SECOND` and `aes256ctr BYTES_PER_SECOND`, one per line (the best of
//! five passes over 256 MiB, so a brief interruption does not count).

use std::time::Instant;

use ctr::cipher::{KeyIvInit, StreamCipher};
use layercrypt::digest::{Algorithm, Hasher};

/// Bytes per pass: large enough to dwarf the timer, small enough to take a fraction of a second.
const PASS: usize = 256 << 20;
/// The engine's chunk: the same cache behaviour as a real run.
const CHUNK: usize = layercrypt::pipeline::CHUNK_SIZE;

fn best_rate(mut pass: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            pass();
            PASS as f64 / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn main() {
    let mut data: Vec<u8> = (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect();
    let sha = best_rate(|| {
        let mut h = Hasher::new(Algorithm::Sha256);
        for _ in 0..PASS / CHUNK {
            h.update(std::hint::black_box(&data));
        }
        std::hint::black_box(h.finish());
    });
    let aes = best_rate(|| {
        let mut c = ctr::Ctr128BE::<aes::Aes256>::new(&[7u8; 32].into(), &[9u8; 16].into());
        for _ in 0..PASS / CHUNK {
            c.apply_keystream(std::hint::black_box(&mut data));
        }
    });
    println!("sha256 {sha:.0}");
    println!("aes256ctr {aes:.0}");
}
