//! Tar entries (`store::tar`): any bytes as an image archive file, indexed by
//! `TarIndex::scan` through `Tarball::open` (uncompressed input; a gzip or zstd one is scanned
//! as it is, without the decompression to a temporary file that opening would do), then every
//! indexed file read back.
//!
//! Invariants: no panic, no read outside the file; an error has a message; every indexed name
//! is normalised (normalising it again changes nothing) and every indexed file lies inside the
//! archive and reads back whole.

#![no_main]

use std::io::Read;

use layercrypt::digest::Digest;
use layercrypt::store::tar::{Compression, TarIndex, Tarball, normalize_name};
use layercrypt_fuzz::{check_message, with_scratch_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = normalize_name(data) {
        assert_eq!(
            normalize_name(name.as_bytes()).as_deref(),
            Ok(name.as_str())
        );
    }
    with_scratch_file(data, |file, path| {
        let index = if Compression::sniff(data) == Compression::None {
            match Tarball::open(path, false) {
                Ok(tarball) => {
                    for name in tarball.index().names() {
                        let entry = tarball.index().get(name).expect("a listed name");
                        let bytes = tarball
                            .read_file(name, u64::MAX)
                            .expect("an indexed file reads")
                            .expect("an indexed file is there");
                        assert_eq!(bytes.len() as u64, entry.size);
                        let start = entry.offset as usize;
                        assert_eq!(&bytes[..], &data[start..start + bytes.len()]);
                        let mut verified = Vec::new();
                        tarball
                            .open_verified(name, &Digest::sha256(&bytes), entry.size)
                            .expect("an indexed file opens")
                            .read_to_end(&mut verified)
                            .expect("an indexed file verifies");
                    }
                    tarball.index().clone()
                }
                Err(e) => return check_message(&e),
            }
        } else {
            match TarIndex::scan(file, path) {
                Ok(index) => index,
                Err(e) => return check_message(&e),
            }
        };
        for name in index.names() {
            assert_eq!(normalize_name(name.as_bytes()).as_deref(), Ok(name));
            let entry = index.get(name).expect("a listed name");
            assert!(
                entry
                    .offset
                    .checked_add(entry.size)
                    .is_some_and(|end| end <= data.len() as u64)
            );
        }
    });
});
