//! Tar archives of images, read in place and written atomically.
//!
//! An archive is never extracted: [`TarIndex::scan`] walks its headers once and records where
//! each regular file's bytes lie, and blobs are then read straight from those offsets (with
//! positioned reads, so many workers can read one archive at once). Because nothing is ever
//! written from an archive's names, a hostile archive cannot put a file anywhere; it is still
//! refused outright, with a clear error, when its entries are dubious: absolute paths or `..`
//! components, links that leave the archive or dangle, duplicate names, devices and FIFOs,
//! and sizes that run past the end of the file.
//!
//! Compressed archives (`docker save | gzip`) are decompressed first into an unnamed
//! temporary file beside the archive (or in the system's temporary directory when that one is
//! read-only), so the index can point into plain tar bytes.
//!
//! [`TarWriter`] writes the deterministic archives layercrypt produces (owner root, mode 0644,
//! time 0) into a temporary file that [`TarWriter::finish`] renames over the target, one file
//! after another. [`TarRegions`] writes the same kind of archive with many files at once: each
//! file whose size is known goes straight into a region of the archive reserved for it, so a
//! layer is written once, where it ends up, instead of being staged and copied.
//!
//! The work is split by job: `index.rs` (walking headers, resolving links), `read.rs`
//! ([`Tarball`], decompressing to a temporary file), `write.rs` ([`TarWriter`]) and
//! `regions.rs` ([`TarRegions`], [`RegionWriter`]).

mod index;
mod read;
mod regions;
#[cfg(test)]
mod tests;
mod write;

use std::path::{Path, PathBuf};

/// How an archive file is compressed, from its first bytes (the crate's one compression
/// vocabulary, shared with layer media types).
pub use crate::format::media_type::Compression;
pub use index::{MAX_ENTRIES, TarEntry, TarIndex, normalize_name};
pub use read::{EntryReader, Tarball};
pub(crate) use regions::{RegionWriter, TarRegions};
pub(crate) use write::TarWriter;

use super::StoreError;

/// The error for an archive that is malformed or hostile, naming it and what is wrong.
fn bad(archive: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::BadArchive {
        path: archive.to_path_buf(),
        reason: reason.into(),
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
