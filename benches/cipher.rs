//! Throughput of the layer cipher next to the primitives it is built from, measured in the
//! same run so the ratios mean something on any machine.
//!
//! Run with `cargo bench --bench cipher`; divan prints bytes/s per benchmark. The engine hashes
//! every byte three times, which `*_with_digests` measure on one core; it spreads that work over
//! every core (see `scripts/bench-image.sh` for whole images).

use divan::counter::BytesCount;
use divan::{Bencher, black_box};
use layercrypt::cipher::{
    DecryptingWriter, DecryptionParams, Decryptor, EncryptingReader, Encryptor, LayerSecrets,
};
use layercrypt::digest::{Algorithm, Hasher};

/// One engine chunk (the engine streams layers through 1 MiB buffers).
const CHUNK: usize = layercrypt::pipeline::CHUNK_SIZE;

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

/// What decrypting one chunk costs the engine: input digest, HMAC and cipher, output digest.
#[divan::bench]
fn decrypt_with_digests(bencher: Bencher) {
    let secrets = LayerSecrets::generate().unwrap();
    let mut data = chunk();
    let params = DecryptionParams {
        secrets,
        hmac: [0; 32],
    };
    bencher.counter(BytesCount::new(CHUNK)).bench_local(|| {
        let mut input = Hasher::new(Algorithm::Sha256);
        let mut output = Hasher::new(Algorithm::Sha256);
        let mut d = Decryptor::new(&params);
        input.update(&data);
        d.apply(black_box(&mut data));
        output.update(&data);
        (input.finish(), d.verify().is_ok(), output.finish())
    });
}

/// The library's streaming encryption, `EncryptingReader`, over 16 chunks held in memory.
#[divan::bench]
fn encrypting_reader(bencher: Bencher) {
    use std::io::Read;
    let secrets = LayerSecrets::generate().unwrap();
    let data = chunk().repeat(16);
    let mut out = vec![0u8; CHUNK];
    bencher
        .counter(BytesCount::new(data.len()))
        .bench_local(|| {
            let mut r = EncryptingReader::new(black_box(&data[..]), &secrets);
            while r.read(&mut out).unwrap() > 0 {}
            r.finish().unwrap()
        });
}

/// The library's streaming decryption, `DecryptingWriter`, over 16 chunks held in memory.
#[divan::bench]
fn decrypting_writer(bencher: Bencher) {
    use std::io::Write;
    let secrets = LayerSecrets::generate().unwrap();
    let mut data = chunk().repeat(16);
    let mut e = Encryptor::new(&secrets);
    e.apply(&mut data);
    let params = DecryptionParams {
        secrets,
        hmac: e.finish(),
    };
    bencher
        .counter(BytesCount::new(data.len()))
        .bench_local(|| {
            let mut w = DecryptingWriter::new(std::io::sink(), &params);
            for c in data.chunks(CHUNK) {
                w.write_all(black_box(c)).unwrap();
            }
            w.finish().unwrap();
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
