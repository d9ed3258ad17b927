//! Indexing a tar archive: one walk over its headers records where each regular file's bytes
//! lie, by normalised name, with symbolic and hard links resolved to the files they name.
//!
//! Never extracts and never touches the file system by an entry's name. Refuses, with a
//! message naming the entry, whatever is dubious: absolute names or `..` components, links
//! that leave the archive, dangle, loop or point at a directory, duplicate names, devices and
//! FIFOs, sizes past the end of the file, and more than [`MAX_ENTRIES`] entries. No input
//! makes it panic.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use super::bad;
use crate::store::StoreError;

/// Most entries an archive may have (a Docker archive of a large image has a few hundred).
pub const MAX_ENTRIES: usize = 1 << 20;

/// Most symbolic links followed to reach a regular file.
const MAX_LINK_HOPS: usize = 16;

/// Where a regular file's bytes lie in an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TarEntry {
    /// Offset of the first byte of data from the start of the (decompressed) archive.
    pub offset: u64,
    /// Number of bytes.
    pub size: u64,
}

/// The regular files of an archive by normalised path (`blobs/sha256/…`, no leading `./`),
/// with links resolved to the files they name.
#[derive(Clone, Debug, Default)]
pub struct TarIndex {
    files: BTreeMap<String, TarEntry>,
}

/// What a header declared, before links are resolved.
enum Scanned {
    File(TarEntry),
    Dir,
    /// A symbolic link, with its target resolved against the link's directory.
    Link(String),
}

/// Normalise an entry name: drop `.` components, a leading `./` and a trailing `/`; refuse
/// absolute names, `..` components, empty names and names that are not UTF-8.
pub fn normalize_name(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "a name that is not UTF-8".to_string())?;
    if text.starts_with('/') {
        return Err(format!("an absolute path `{text}`"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("a `..` path `{text}`")),
            p if p.contains('\0') => return Err("a name with a NUL byte".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("an empty name `{text}`"));
    }
    Ok(parts.join("/"))
}

/// Whether a relative name names the archive's root (`.`, `./`).
fn is_root(raw: &[u8]) -> bool {
    !raw.is_empty()
        && !raw.starts_with(b"/")
        && raw.split(|&b| b == b'/').all(|p| p.is_empty() || p == b".")
}

/// Resolve a symbolic link's target against the directory of `link` (a normalised name);
/// refuse targets that are absolute or climb out of the archive.
fn resolve_link(link: &str, target: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(target).map_err(|_| "a link target that is not UTF-8")?;
    if text.starts_with('/') {
        return Err(format!(
            "link `{link}` points to the absolute path `{text}`"
        ));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "link `{link}` points outside the archive (`{text}`)"
                    ));
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(format!("link `{link}` points to the archive's root"));
    }
    Ok(parts.join("/"))
}

impl TarIndex {
    /// Walk the headers of the plain tar `file` (named `archive` in messages) and index its
    /// regular files, refusing dubious entries (see the module documentation).
    pub fn scan(file: &File, archive: &Path) -> Result<TarIndex, StoreError> {
        let length = file
            .metadata()
            .map_err(|e| StoreError::io("reading", archive, e))?
            .len();
        let mut reader = file;
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| StoreError::io("reading", archive, e))?;
        let mut tar = tar::Archive::new(reader);
        let entries = tar
            .entries_with_seek()
            .map_err(|e| bad(archive, format!("it is not a tar archive ({e})")))?;
        let mut scanned: BTreeMap<String, Scanned> = BTreeMap::new();
        for (count, entry) in entries.enumerate() {
            let entry = entry.map_err(|e| bad(archive, format!("it is not a valid tar ({e})")))?;
            if count >= MAX_ENTRIES {
                return Err(bad(
                    archive,
                    format!("it has more than {MAX_ENTRIES} entries"),
                ));
            }
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions() {
                continue;
            }
            // `tar -C layout -cf image.tar .` starts with the archive's root, `./`.
            if kind == tar::EntryType::Directory && is_root(&entry.path_bytes()) {
                continue;
            }
            let name = normalize_name(&entry.path_bytes())
                .map_err(|e| bad(archive, format!("it holds {e}")))?;
            let item = match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let offset = entry.raw_file_position();
                    let size = entry.size();
                    if offset.checked_add(size).is_none_or(|end| end > length) {
                        return Err(bad(
                            archive,
                            format!(
                                "entry `{name}` claims {size} bytes, more than the archive holds"
                            ),
                        ));
                    }
                    Scanned::File(TarEntry { offset, size })
                }
                tar::EntryType::Directory => Scanned::Dir,
                tar::EntryType::Symlink => {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    Scanned::Link(resolve_link(&name, &target).map_err(|e| bad(archive, e))?)
                }
                tar::EntryType::Link => {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    let target = normalize_name(&target)
                        .map_err(|e| bad(archive, format!("hard link `{name}` points to {e}")))?;
                    Scanned::Link(target)
                }
                other => {
                    return Err(bad(
                        archive,
                        format!("entry `{name}` is a {other:?}, not a file, directory or link"),
                    ));
                }
            };
            match (scanned.get(&name), &item) {
                // Directories may be repeated harmlessly (some writers emit parents twice).
                (Some(Scanned::Dir), Scanned::Dir) => {}
                (Some(_), _) => {
                    return Err(bad(archive, format!("entry `{name}` appears twice")));
                }
                (None, _) => {
                    scanned.insert(name, item);
                }
            }
        }
        let mut files = BTreeMap::new();
        for (name, item) in &scanned {
            let entry = match item {
                Scanned::File(entry) => *entry,
                Scanned::Dir => continue,
                Scanned::Link(target) => {
                    let mut at = target;
                    let mut hops = 0;
                    loop {
                        match scanned.get(at) {
                            Some(Scanned::File(entry)) => break *entry,
                            Some(Scanned::Link(next)) if hops < MAX_LINK_HOPS => {
                                hops += 1;
                                at = next;
                            }
                            Some(Scanned::Link(_)) => {
                                return Err(bad(
                                    archive,
                                    format!("link `{name}` is part of a loop or a long chain"),
                                ));
                            }
                            Some(Scanned::Dir) => {
                                return Err(bad(
                                    archive,
                                    format!("link `{name}` points to the directory `{at}`"),
                                ));
                            }
                            None => {
                                return Err(bad(
                                    archive,
                                    format!(
                                        "link `{name}` points to `{at}`, which it does not hold"
                                    ),
                                ));
                            }
                        }
                    }
                }
            };
            files.insert(name.clone(), entry);
        }
        Ok(TarIndex { files })
    }

    /// The regular file (or link to one) named `name`.
    pub fn get(&self, name: &str) -> Option<TarEntry> {
        self.files.get(name).copied()
    }

    /// Every file name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}
