//! Throughput of the layer cipher next to the primitives it is built from, measured in the
//! same run so the ratios mean something on any machine.
//!
//! Run with `cargo bench --bench cipher`; divan prints bytes/s per benchmark.

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use layercrypt::cipher::{DecryptionParams, Decryptor, Encryptor, LayerSecrets};
use layercrypt::digest::{Algorithm, Hasher};

/// One engine chunk (the engine streams layers through 1 MiB buffers).
const CHUNK: usize = layercrypt::engine::CHUNK_SIZE;

fn main() {
    divan::main();
}

fn chunk() -> Vec<u8> {
    (0..CHUNK).map(|i| (i * 31 % 251) as u8).collect()
}

/// Raw SHA-256 (the digest of every blob read or written).
#[divan::bench]
fn sha256(bencher: Bencher) {
    let data = chunk();
    bencher.counter(BytesCount::new(CHUNK)).bench(|| {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(black_box(&data));
        h.finish()
    });
}

/// Encryption: AES-256-CTR then HMAC-SHA256, in place.
#[divan::bench]
fn encrypt(bencher: Bencher) {
    let secrets = LayerSecrets::generate().unwrap();
    let mut data = chunk();
    bencher.counter(BytesCount::new(CHUNK)).bench_local(|| {
        let mut e = Encryptor::new(&secrets);
        e.apply(black_box(&mut data));
        e.finish()
    });
}

/// Decryption: HMAC-SHA256 then AES-256-CTR, in place, HMAC checked at the end.
#[divan::bench]
fn decrypt(bencher: Bencher) {
    let secrets = LayerSecrets::generate().unwrap();
    let mut data = chunk();
    let mut e = Encryptor::new(&secrets);
    e.apply(&mut data);
    let params = DecryptionParams {
        secrets,
        hmac: e.finish(),
    };
    bencher.counter(BytesCount::new(CHUNK)).bench_local(|| {
        // The HMAC only matches on the first pass; the benchmark measures the work, not the
        // verdict.
        let mut d = Decryptor::new(&params);
        d.apply(black_box(&mut data));
        let _ = black_box(d.verify());
    });
}

/// What encrypting one chunk costs the engine: input digest, cipher and HMAC, output digest.
#[divan::bench]
fn encrypt_with_digests(bencher: Bencher) {
    let secrets = LayerSecrets::generate().unwrap();
    let mut data = chunk();
    bencher.counter(BytesCount::new(CHUNK)).bench_local(|| {
        let mut input = Hasher::new(Algorithm::Sha256);
        let mut output = Hasher::new(Algorithm::Sha256);
        let mut e = Encryptor::new(&secrets);
        input.update(&data);
        e.apply(black_box(&mut data));
        output.update(&data);
        (input.finish(), e.finish(), output.finish())
    });
}

/// Raw AES-256-CTR keystream (the cipher without the HMAC).
#[divan::bench]
fn aes256_ctr(bencher: Bencher) {
    use ctr::cipher::{KeyIvInit, StreamCipher};
    let mut data = chunk();
    let key = [7u8; 32];
    let iv = [9u8; 16];
    bencher.counter(BytesCount::new(CHUNK)).bench_local(|| {
        let mut c = ctr::Ctr128BE::<aes::Aes256>::new(&key.into(), &iv.into());
        c.apply_keystream(black_box(&mut data));
    });
}
