//! One repository of a registry as a store: its made-up top-level index, the manifests read
//! (kept, so nothing is fetched twice), and the writer that pushes re-keyed manifests and then
//! moves the tags.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Cursor, Read, Write};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::client::{Client, Deleted, Fetched};
use super::{Access, RegistryError, RegistryRef};
use crate::digest::{Algorithm, Digest, VerifyError, VerifyingReader};
use crate::format::descriptor::TopIndex;
use crate::format::media_type::{OCI_INDEX, OCI_MANIFEST, is_index, is_manifest};
use crate::store::{
    BlobSink, BlobSource, ChunkWrite, CommitReport, MAX_MANIFEST_SIZE, SourceStore, StoreError,
    StoreWriter,
};

/// The annotation that names an image in an index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A manifest held in memory: its media type and bytes.
type Held = (String, Arc<Vec<u8>>);

/// What the store and its writer share.
struct Shared {
    /// `docker://host/repo`.
    name: String,
    client: Client,
    /// Manifests and indexes read or pushed: digest → (media type, bytes).
    known: Mutex<HashMap<Digest, Held>>,
    /// Manifests read from the registry (not pushed by this run): the only ones ever deleted.
    read: Mutex<BTreeSet<Digest>>,
    /// Each tag read, and its digest then.
    tags: BTreeMap<String, Digest>,
    /// Delete replaced manifests.
    delete_old: bool,
}

/// A repository (or one tag or digest of it) opened as a source.
pub struct RegistryStore {
    shared: Arc<Shared>,
    /// The made-up top-level index.
    index: Vec<u8>,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("name", &self.shared.name)
            .finish()
    }
}

fn store_error(e: RegistryError) -> StoreError {
    StoreError::Registry(e)
}

impl RegistryStore {
    /// Open `reference`: read the manifest its tag or digest names, or every tag's (sorted)
    /// when it names neither. `write`: the run will push (a token for pushing is asked for).
    pub fn open(
        reference: &RegistryRef,
        access: &Access,
        write: bool,
    ) -> Result<RegistryStore, StoreError> {
        let client = Client::new(reference, access, write).map_err(store_error)?;
        let roots: Vec<(Option<String>, Fetched)> = match (&reference.digest, &reference.tag) {
            (Some(d), _) => vec![(None, client.get_manifest(&d.to_string(), MAX_MANIFEST_SIZE))],
            (None, Some(t)) => vec![(Some(t.clone()), client.get_manifest(t, MAX_MANIFEST_SIZE))],
            (None, None) => {
                let tags = client.list_tags().map_err(store_error)?;
                fetch_all(&client, &tags)
                    .into_iter()
                    .zip(tags)
                    .map(|(fetched, tag)| (Some(tag), fetched))
                    .collect()
            }
        }
        .into_iter()
        .map(|(tag, fetched)| fetched.map(|f| (tag, f)))
        .collect::<Result<_, _>>()
        .map_err(store_error)?;
        let name = format!("docker://{}", reference.repository_name());
        if roots.is_empty() {
            return Err(store_error(RegistryError::NotFound {
                registry: reference.registry.clone(),
                what: format!("tag in repository {}", reference.repository),
            }));
        }
        let mut known = HashMap::new();
        let mut read = BTreeSet::new();
        let mut tags = BTreeMap::new();
        let mut entries = Vec::new();
        for (tag, fetched) in roots {
            let media_type = media_type_of(&fetched).ok_or_else(|| {
                store_error(RegistryError::BadAnswer {
                    registry: reference.registry.clone(),
                    what: format!(
                        "manifest {}",
                        tag.clone().unwrap_or_else(|| fetched.digest.to_string())
                    ),
                    reason: "it is neither an OCI nor a Docker v2 manifest or index".into(),
                })
            })?;
            let mut entry = json!({
                "mediaType": media_type,
                "digest": fetched.digest.to_string(),
                "size": fetched.bytes.len(),
            });
            if let Some(t) = &tag {
                entry["annotations"] = json!({ REF_NAME: t });
                tags.insert(t.clone(), fetched.digest.clone());
            }
            entries.push(entry);
            read.insert(fetched.digest.clone());
            known.insert(fetched.digest, (media_type, Arc::new(fetched.bytes)));
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        }))
        .expect("JSON values serialize");
        Ok(RegistryStore {
            shared: Arc::new(Shared {
                name,
                client,
                known: Mutex::new(known),
                read: Mutex::new(read),
                tags,
                delete_old: access.delete_old,
            }),
            index,
        })
    }
}

/// How many manifests of a repository are fetched at once: each is one small request, bound
/// by the network's latency, not by bandwidth.
const CONCURRENT_FETCHES: usize = 8;

/// Fetch the manifest of every tag, [`CONCURRENT_FETCHES`] at a time, in the tags' order.
fn fetch_all(client: &Client, tags: &[String]) -> Vec<Result<Fetched, RegistryError>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let slots: Vec<Mutex<Option<Result<Fetched, RegistryError>>>> =
        tags.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENT_FETCHES.min(tags.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(tag) = tags.get(i) else {
                        return;
                    };
                    let fetched = client.get_manifest(tag, MAX_MANIFEST_SIZE);
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(fetched);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or(Err(RegistryError::Interrupted))
        })
        .collect()
}

/// The media type of a fetched manifest: its own `mediaType`, else the registry's
/// `Content-Type`, else what its members say it is; `None` for anything else.
fn media_type_of(f: &Fetched) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(&f.bytes).ok()?;
    let own = doc.get("mediaType").and_then(|m| m.as_str());
    let candidate = match (own, f.content_type.as_deref()) {
        (Some(m), _) => m.to_string(),
        (None, Some(c)) if is_index(c) || is_manifest(c) => c.to_string(),
        (None, _) if doc.get("manifests").is_some() => OCI_INDEX.to_string(),
        (None, _) if doc.get("layers").is_some() => OCI_MANIFEST.to_string(),
        _ => return None,
    };
    (is_index(&candidate) || is_manifest(&candidate)).then_some(candidate)
}

impl Shared {
    fn known(&self, digest: &Digest) -> Option<Held> {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        if let Some((_, bytes)) = self.known(digest) {
            let reader = Cursor::new(ArcBytes(bytes));
            return Ok(Box::new(VerifyingReader::new(reader, digest.clone(), size)));
        }
        let response = self.client.open_blob(digest).map_err(store_error)?;
        Ok(Box::new(VerifyingReader::new(
            response,
            digest.clone(),
            size,
        )))
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.known(digest).is_some() || self.client.has_blob(digest).unwrap_or(false)
    }

    fn read_small_blob(
        &self,
        what: &'static str,
        digest: &Digest,
        size: u64,
        limit: u64,
    ) -> Result<Vec<u8>, StoreError> {
        if size > limit {
            return Err(StoreError::TooLarge {
                store: self.name.clone(),
                what,
                digest: digest.clone(),
                size,
                limit,
            });
        }
        let bytes = match self.known(digest) {
            Some((_, bytes)) => bytes.as_ref().clone(),
            None if what == "manifest" || what == "index" => {
                let fetched = self
                    .client
                    .get_manifest(&digest.to_string(), limit)
                    .map_err(store_error)?;
                let media_type = media_type_of(&fetched).unwrap_or_default();
                let bytes = Arc::new(fetched.bytes);
                self.read
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest.clone());
                self.known
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest.clone(), (media_type, Arc::clone(&bytes)));
                bytes.as_ref().clone()
            }
            None => self.client.get_blob(digest, limit).map_err(store_error)?,
        };
        let corrupt = |source: VerifyError| StoreError::Corrupt {
            store: self.name.clone(),
            digest: digest.clone(),
            source,
        };
        let actual = Digest::of(digest.algorithm(), &bytes);
        if actual != *digest {
            return Err(corrupt(VerifyError::DigestMismatch {
                expected: digest.clone(),
                actual,
            }));
        }
        if bytes.len() as u64 != size {
            return Err(corrupt(if (bytes.len() as u64) < size {
                VerifyError::Truncated {
                    digest: digest.clone(),
                    expected: size,
                    actual: bytes.len() as u64,
                }
            } else {
                VerifyError::TooLong {
                    digest: digest.clone(),
                    expected: size,
                }
            }));
        }
        Ok(bytes)
    }
}

/// Shared bytes as a `Cursor`'s buffer.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// `BlobSource` for the store and its writer alike.
macro_rules! registry_blob_source {
    ($t:ty) => {
        impl BlobSource for $t {
            fn name(&self) -> &str {
                &self.shared.name
            }

            fn read_index(&self) -> Result<Vec<u8>, StoreError> {
                Ok(self.index.clone())
            }

            fn open_blob(
                &self,
                digest: &Digest,
                size: u64,
            ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
                self.shared.open_blob(digest, size)
            }

            fn has_blob(&self, digest: &Digest) -> bool {
                self.shared.has_blob(digest)
            }

            fn read_small_blob(
                &self,
                what: &'static str,
                digest: &Digest,
                size: u64,
                limit: u64,
            ) -> Result<Vec<u8>, StoreError> {
                self.shared.read_small_blob(what, digest, size, limit)
            }
        }
    };
}

registry_blob_source!(RegistryStore);
registry_blob_source!(RegistryWriter);

impl SourceStore for RegistryStore {
    fn writer_in_place(&self) -> Result<Box<dyn StoreWriter>, StoreError> {
        Ok(Box::new(RegistryWriter {
            shared: Arc::clone(&self.shared),
            index: self.index.clone(),
        }))
    }
}

/// Rewrites a repository's images: manifests pushed by digest as they come, tags moved on
/// commit.
pub struct RegistryWriter {
    shared: Arc<Shared>,
    index: Vec<u8>,
}

impl std::fmt::Debug for RegistryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryWriter")
            .field("name", &self.shared.name)
            .finish()
    }
}

/// A manifest (or small blob) being written: kept in memory, pushed on commit.
struct PushSink<'a> {
    shared: &'a Shared,
    bytes: Vec<u8>,
}

impl Write for PushSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if (self.bytes.len() + data.len()) as u64 > MAX_MANIFEST_SIZE {
            return Err(io::Error::other(
                "a registry takes re-keyed manifests here, not layer data",
            ));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ChunkWrite for PushSink<'_> {}

impl BlobSink for PushSink<'_> {
    fn commit(self: Box<Self>) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::sha256(&self.bytes);
        let size = self.bytes.len() as u64;
        let fetched = Fetched {
            bytes: self.bytes,
            content_type: None,
            digest: digest.clone(),
        };
        let client = &self.shared.client;
        match media_type_of(&fetched) {
            Some(media_type) => {
                client
                    .put_manifest(&digest.to_string(), &media_type, &fetched.bytes)
                    .map_err(store_error)?;
                self.shared
                    .known
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(digest.clone(), (media_type, Arc::new(fetched.bytes)));
            }
            None => client
                .upload_blob(&digest, &fetched.bytes)
                .map_err(store_error)?,
        }
        Ok((digest, size))
    }
}

impl StoreWriter for RegistryWriter {
    fn existing_index(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(Some(self.index.clone()))
    }

    fn create_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobSink + '_>, StoreError> {
        if algorithm != Algorithm::Sha256 {
            return Err(StoreError::CannotStore {
                store: self.shared.name.clone(),
                reason: format!(
                    "a registry names manifests by sha256, not {}",
                    algorithm.name()
                ),
            });
        }
        Ok(Box::new(PushSink {
            shared: &self.shared,
            bytes: Vec::new(),
        }))
    }

    fn create_blob_sized(
        &self,
        algorithm: Algorithm,
        size: u64,
    ) -> Result<Box<dyn BlobSink + '_>, StoreError> {
        if size > MAX_MANIFEST_SIZE {
            return Err(StoreError::CannotStore {
                store: self.shared.name.clone(),
                reason: "layer data is not written to a registry; copy the image with skopeo"
                    .into(),
            });
        }
        self.create_blob(algorithm)
    }

    fn commit(
        self: Box<Self>,
        index: &[u8],
        garbage: &[Digest],
    ) -> Result<CommitReport, StoreError> {
        let shared = &self.shared;
        let new = TopIndex::parse(index).map_err(|e| StoreError::CannotStore {
            store: shared.name.clone(),
            reason: format!("the new index: {e}"),
        })?;
        // Move the tags, last: every manifest they name is in the registry already.
        for entry in &new.entries {
            let Some(tag) = entry.ref_name() else {
                continue;
            };
            if shared.tags.get(&tag) == Some(&entry.digest) {
                continue;
            }
            let (_, bytes) =
                shared
                    .known(&entry.digest)
                    .ok_or_else(|| StoreError::MissingBlob {
                        store: shared.name.clone(),
                        digest: entry.digest.clone(),
                    })?;
            shared
                .client
                .put_manifest(&tag, &entry.media_type, &bytes)
                .map_err(store_error)?;
        }
        let mut report = CommitReport::default();
        if !shared.delete_old {
            return Ok(report);
        }
        // Only manifests this run read, replaced, and that no tag still needs.
        let read = shared
            .read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut stale: Vec<Digest> = garbage
            .iter()
            .filter(|d| read.contains(d))
            .cloned()
            .collect();
        if stale.is_empty() {
            return Ok(report);
        }
        let still_needed = match self.still_needed(&new) {
            Ok(needed) => needed,
            Err(e) => {
                report.warnings.push(format!(
                    "not deleting the replaced manifests: cannot tell which other tags need them: {e}"
                ));
                return Ok(report);
            }
        };
        stale.retain(|d| {
            if let Some(tag) = still_needed.get(d) {
                report.warnings.push(format!(
                    "manifest {d} is not deleted: tag {tag} still needs it"
                ));
                false
            } else {
                true
            }
        });
        for digest in stale {
            match shared.client.delete_manifest(&digest) {
                Ok(Deleted::Yes | Deleted::Gone) => report.removed.push(digest),
                Ok(Deleted::Refused(why)) => report.warnings.push(format!(
                    "registry {} refused to delete manifest {digest} ({why}): it stays readable by digest",
                    shared.client.registry()
                )),
                Err(e) => report.warnings.push(format!(
                    "manifest {digest} is not deleted: {e}"
                )),
            }
        }
        Ok(report)
    }
}

impl RegistryWriter {
    /// Every manifest a tag of the repository needs (its root, and an index's children),
    /// other than the tags of the new index: digest → one tag that needs it.
    fn still_needed(&self, new: &TopIndex) -> Result<HashMap<Digest, String>, RegistryError> {
        let shared = &self.shared;
        let ours: BTreeSet<String> = new.entries.iter().filter_map(|e| e.ref_name()).collect();
        let mut needed = HashMap::new();
        for entry in &new.entries {
            // The new images' own manifests (an unchanged platform's manifest is kept).
            let tag = entry.ref_name().unwrap_or_default();
            self.collect(&entry.digest, tag, &mut needed)?;
        }
        for tag in shared.client.list_tags()? {
            if ours.contains(&tag) {
                continue;
            }
            if let Some(digest) = shared.client.tag_digest(&tag)? {
                self.collect(&digest, tag, &mut needed)?;
            }
        }
        Ok(needed)
    }

    fn collect(
        &self,
        digest: &Digest,
        tag: String,
        needed: &mut HashMap<Digest, String>,
    ) -> Result<(), RegistryError> {
        let bytes = match self.shared.known(digest) {
            Some((_, b)) => b,
            None => Arc::new(
                self.shared
                    .client
                    .get_manifest(&digest.to_string(), MAX_MANIFEST_SIZE)?
                    .bytes,
            ),
        };
        needed.insert(digest.clone(), tag.clone());
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(children) = doc.get("manifests").and_then(|m| m.as_array()) {
            for child in children {
                if let Some(d) = child
                    .get("digest")
                    .and_then(|d| d.as_str())
                    .and_then(|d| d.parse::<Digest>().ok())
                {
                    needed.insert(d, tag.clone());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_document_then_the_registry() {
        let fetched = |bytes: &str, ct: Option<&str>| Fetched {
            bytes: bytes.as_bytes().to_vec(),
            content_type: ct.map(str::to_string),
            digest: Digest::sha256(bytes.as_bytes()),
        };
        assert_eq!(
            media_type_of(&fetched(
                r#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
                None
            ))
            .as_deref(),
            Some(OCI_INDEX)
        );
        assert_eq!(
            media_type_of(&fetched(
                r#"{"schemaVersion":2,"config":{},"layers":[]}"#,
                None
            ))
            .as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(
            media_type_of(&fetched(r#"{"schemaVersion":2}"#, Some(OCI_MANIFEST))).as_deref(),
            Some(OCI_MANIFEST)
        );
        assert_eq!(
            media_type_of(&fetched(r#"{"schemaVersion":1}"#, None)),
            None
        );
        assert_eq!(
            media_type_of(&fetched("not json", Some(OCI_MANIFEST))),
            None
        );
        assert_eq!(
            media_type_of(&fetched(r#"{"mediaType":"text/plain"}"#, None)),
            None
        );
    }
}
