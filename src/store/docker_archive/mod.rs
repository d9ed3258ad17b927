//! `docker save` tarballs as a store: read through an OCI-layout-like view, written whole.
//!
//! A Docker archive lists its images in `manifest.json` (config path, `RepoTags`, layer paths),
//! not in descriptors, so [`DockerArchive`] synthesises what the engine expects: one Docker
//! schema 2 manifest per `manifest.json` item, served from memory, and an OCI index pointing at
//! them. Uncompressed layer files are named by their `rootfs.diff_ids` digest and verified
//! whenever they are read; compressed ones are hashed (and their content checked against the
//! diff id) once at open. The newer form written by Docker 25 also carries `index.json` and
//! `blobs/`; when that index lines up with `manifest.json` it is served as it is, so manifest
//! digests are preserved, and otherwise the synthesis is used.
//!
//! [`DockerArchiveWriter`] stages blobs in an OCI layout beside the target and, at commit,
//! writes the archive as skopeo does (decompressed `<diffid>.tar` layers, `<config>.json`,
//! legacy `<id>/` directories, `manifest.json`, `repositories`) into a temporary file renamed
//! over the target. A Docker archive cannot carry encrypted layers: the writer refuses them.
//!
//! Never trusts the archive: every name is looked up in the index of the tar (never opened on
//! the file system), every size read into memory is bounded, and no input makes it panic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::direct::AlignedBuf;
use super::oci::OciLayoutWriter;
use super::tarball::{Compression, Tarball, normalize_name, parent_dir};
use super::temp::{self, TempDir};
use super::{
    BlobSink, BlobSource, CommitReport, MAX_INDEX_SIZE, MAX_MANIFEST_SIZE, StoreError, StoreWriter,
};
use crate::digest::{Algorithm, Digest, Hasher, VerifyError, VerifyingReader};
use crate::format::REF_NAME_ANNOTATION;
use crate::format::json::{JsonObject, to_go_vec, write_go_string};
use crate::format::media_type::{
    DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, ENCRYPTED_SUFFIX, OCI_INDEX,
    OCI_LAYER_ZSTD, OCI_MANIFEST, is_foreign, is_non_distributable, layer_compression,
};
use crate::image::{Descriptor, TopIndex};

/// The annotation containerd and Docker 25 put on `index.json` entries: the full image name.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// The file listing the images of an archive.
const MANIFEST_FILE: &str = "manifest.json";
/// The legacy `repo → tag → top layer id` file.
const REPOSITORIES_FILE: &str = "repositories";

/// Where a blob served by a [`DockerArchive`] comes from.
#[derive(Debug)]
enum Blob {
    /// A synthesised manifest.
    Memory(Vec<u8>),
    /// A file in the archive, by normalised name.
    File(String),
}

/// One image listed in an archive's `manifest.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveImage {
    /// Its `RepoTags`, as written (empty for an untagged image).
    pub repo_tags: Vec<String>,
    /// The `org.opencontainers.image.ref.name` of the index entry that stands for it, if any.
    pub ref_name: Option<String>,
    /// The digest of its config.
    pub config: Digest,
}

/// A `docker save` archive opened for reading.
#[derive(Debug)]
pub struct DockerArchive {
    name: String,
    tar: Tarball,
    index: Vec<u8>,
    blobs: HashMap<Digest, Blob>,
    images: Vec<ArchiveImage>,
    /// Normalised `repo:tag` → ref name of the entry carrying it, in `manifest.json` order.
    tags: Vec<(String, String)>,
    oci_form: bool,
}

/// A reference that is not a Docker `repo[:tag]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not a Docker image reference (repo[:tag]): {reason}")]
pub struct ReferenceError {
    /// The reference as given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One item of `manifest.json`, as Docker and skopeo write it.
#[derive(Deserialize)]
struct ManifestItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Option<Vec<String>>,
    #[serde(rename = "LayerSources", default)]
    layer_sources: Option<IndexMap<String, Box<RawValue>>>,
}

/// The part of an image config this module needs.
#[derive(Deserialize)]
struct ImageConfig {
    rootfs: Option<RootFs>,
}

#[derive(Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

/// What the legacy synthesis learned about one item.
struct Synthesised {
    config: Digest,
    layers: usize,
}

/// The Docker 25 form's own index, when it lines up with `manifest.json`.
struct OciView {
    index: Vec<u8>,
    /// Normalised `repo:tag` → ref name of the entry carrying it.
    tags: Vec<(String, String)>,
    /// The ref name standing for each `manifest.json` item.
    refs: Vec<Option<String>>,
}

/// A config file, read and checked at open.
#[derive(Clone)]
struct ReadConfig {
    digest: Digest,
    size: u64,
    diff_ids: Vec<Digest>,
}

/// What `open` has already read, by file name, so shared files are read once.
#[derive(Default)]
struct Caches {
    configs: HashMap<String, ReadConfig>,
    compressed: HashMap<String, Compressed>,
}

/// A compressed layer file, hashed at open.
#[derive(Clone)]
struct Compressed {
    digest: Digest,
    size: u64,
    media_type: &'static str,
}

impl DockerArchive {
    /// The archive file.
    pub fn path(&self) -> &Path {
        self.tar.path()
    }

    /// Open, lock (shared, or `exclusive` when it will be rewritten) and index the archive at
    /// `path`, validating `manifest.json`, the configs and every compressed layer.
    pub fn open(path: &Path, exclusive: bool) -> Result<DockerArchive, StoreError> {
        let tar = Tarball::open(path, exclusive)?;
        let mut archive = DockerArchive {
            name: format!("docker-archive:{}", path.display()),
            tar,
            index: Vec::new(),
            blobs: HashMap::new(),
            images: Vec::new(),
            tags: Vec::new(),
            oci_form: false,
        };
        let items = archive.read_manifest_list()?;
        let mut entries = Vec::with_capacity(items.len());
        let mut synthesised = Vec::with_capacity(items.len());
        let mut caches = Caches::default();
        for (i, item) in items.iter().enumerate() {
            let (entry, synth) = archive.synthesise(i, item, &mut caches)?;
            entries.push(entry);
            synthesised.push(synth);
        }
        let legacy_tags = archive.legacy_tags();
        // The newer form: serve its own index when it lines up with manifest.json.
        if let Some(view) = archive.oci_view(&synthesised)? {
            archive.index = view.index;
            archive.tags = view.tags;
            for (image, r) in archive.images.iter_mut().zip(view.refs) {
                image.ref_name = r;
            }
            archive.oci_form = true;
        } else {
            let mut doc = JsonObject::new();
            doc.set("schemaVersion", &2u32);
            doc.set("mediaType", OCI_INDEX);
            doc.set_object_array("manifests", &entries);
            archive.index = doc.to_go_bytes();
            archive.tags = legacy_tags;
        }
        Ok(archive)
    }

    /// The images `manifest.json` lists, in order.
    pub fn images(&self) -> &[ArchiveImage] {
        &self.images
    }

    /// Whether the archive's own `index.json` is served (the Docker 25 form lined up), rather
    /// than an index synthesised from `manifest.json`.
    pub fn serves_oci_index(&self) -> bool {
        self.oci_form
    }

    /// The `org.opencontainers.image.ref.name` of the index entry for the image tagged
    /// `reference` (`repo[:tag]`, normalised as Docker does: `alpine` is
    /// `docker.io/library/alpine:latest`), or `None` when no image carries that tag.
    pub fn resolve(&self, reference: &str) -> Result<Option<String>, ReferenceError> {
        let wanted = normalize_reference(reference)?;
        Ok(self
            .tags
            .iter()
            .find(|(tag, _)| *tag == wanted)
            .map(|(_, r)| r.clone()))
    }

    fn bad(&self, reason: impl Into<String>) -> StoreError {
        StoreError::BadArchive {
            path: self.tar.path().to_path_buf(),
            reason: reason.into(),
        }
    }

    fn read_manifest_list(&self) -> Result<Vec<ManifestItem>, StoreError> {
        let bytes = self
            .tar
            .read_file(MANIFEST_FILE, MAX_MANIFEST_SIZE)?
            .ok_or_else(|| {
                self.bad("it has no manifest.json (a `docker save` archive lists its images there)")
            })?;
        let items: Vec<ManifestItem> = serde_json::from_slice(&bytes)
            .map_err(|e| self.bad(format!("manifest.json is not valid: {e}")))?;
        if items.is_empty() {
            return Err(self.bad("manifest.json lists no images"));
        }
        Ok(items)
    }

    /// A file named in `manifest.json`, normalised and present in the archive.
    fn member(&self, what: &str, raw: &str) -> Result<String, StoreError> {
        let name =
            normalize_name(raw.as_bytes()).map_err(|e| self.bad(format!("{what} names {e}")))?;
        if !self.tar.contains(&name) {
            return Err(self.bad(format!(
                "{what} `{raw}` is not in the archive (or is not a regular file)"
            )));
        }
        Ok(name)
    }

    /// Read a config named in `manifest.json`, check it against the digest its name announces
    /// and take its diff ids.
    fn read_config(&self, config_name: &str) -> Result<ReadConfig, StoreError> {
        let config_bytes = self
            .tar
            .read_file(config_name, MAX_MANIFEST_SIZE)?
            .expect("member() checked it");
        let digest = Digest::sha256(&config_bytes);
        if let Some(named) = hex_in_name(config_name)
            && named != digest.hex()
        {
            return Err(self.bad(format!(
                "config `{config_name}` has digest {digest}, but its name says sha256:{named}"
            )));
        }
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.bad(format!("config `{config_name}` is not valid: {e}")))?;
        let diff_ids = config
            .rootfs
            .and_then(|r| r.diff_ids)
            .ok_or_else(|| self.bad(format!("config `{config_name}` has no rootfs.diff_ids")))?
            .iter()
            .enumerate()
            .map(|(n, d)| {
                d.parse::<Digest>().map_err(|e| {
                    self.bad(format!("config `{config_name}`: rootfs.diff_ids[{n}]: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReadConfig {
            digest,
            size: config_bytes.len() as u64,
            diff_ids,
        })
    }

    /// Build the Docker schema 2 manifest of `manifest.json` item `i`, register its blobs and
    /// return its index entry.
    fn synthesise(
        &mut self,
        i: usize,
        item: &ManifestItem,
        caches: &mut Caches,
    ) -> Result<(JsonObject, Synthesised), StoreError> {
        let at = format!("manifest.json item {i}");
        let config_name = self.member(&format!("{at}: config"), &item.config)?;
        // Items may share a config; a hostile list could name one large config many times.
        let config = match caches.configs.get(&config_name) {
            Some(c) => c.clone(),
            None => {
                let c = self.read_config(&config_name)?;
                caches.configs.insert(config_name.clone(), c.clone());
                c
            }
        };
        let (config_digest, diff_ids) = (config.digest, config.diff_ids);
        let layer_paths = item.layers.as_deref().unwrap_or_default();
        if layer_paths.len() != diff_ids.len() {
            return Err(self.bad(format!(
                "{at} lists {} layers, but its config `{config_name}` has {} diff_ids",
                layer_paths.len(),
                diff_ids.len()
            )));
        }
        let mut sources = HashMap::new();
        for (diff_id, raw) in item.layer_sources.iter().flatten() {
            let obj = JsonObject::parse(raw.get().as_bytes())
                .map_err(|e| self.bad(format!("{at}: LayerSources[{diff_id}]: {e}")))?;
            let desc = Descriptor::parse(obj, &format!("{at}: LayerSources[{diff_id}]"))
                .map_err(|e| self.bad(e.to_string()))?;
            sources.insert(diff_id.clone(), desc);
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (n, (raw, diff_id)) in layer_paths.iter().zip(&diff_ids).enumerate() {
            if let Some(foreign) = sources.get(&diff_id.to_string()) {
                // Its blob lives at `urls`; the engine passes it through untouched.
                layers.push(foreign.json.clone());
                continue;
            }
            let name = self.member(&format!("{at}: layer {n}"), raw)?;
            let (media_type, digest, size) = match caches.compressed.get(&name) {
                Some(c) => (c.media_type, c.digest.clone(), c.size),
                None => {
                    let size = self.tar.index().get(&name).map_or(0, |e| e.size);
                    match self.sniff(&name)? {
                        Compression::None => (DOCKER_LAYER, diff_id.clone(), size),
                        kind => {
                            let c = self.hash_compressed(&name, kind, diff_id)?;
                            caches.compressed.insert(name.clone(), c.clone());
                            (c.media_type, c.digest, c.size)
                        }
                    }
                }
            };
            self.blobs
                .entry(digest.clone())
                .or_insert_with(|| Blob::File(name.clone()));
            layers.push(descriptor(media_type, size, &digest));
        }
        self.blobs
            .entry(config_digest.clone())
            .or_insert(Blob::File(config_name));
        let mut manifest = JsonObject::new();
        manifest.set("schemaVersion", &2u32);
        manifest.set("mediaType", DOCKER_MANIFEST);
        manifest.set_object(
            "config",
            &descriptor(DOCKER_CONFIG, config.size, &config_digest),
        );
        manifest.set_object_array("layers", &layers);
        let bytes = manifest.to_go_bytes();
        let digest = Digest::sha256(&bytes);
        let mut entry = JsonObject::new();
        entry.set("mediaType", DOCKER_MANIFEST);
        entry.set("digest", &digest.to_string());
        entry.set("size", &(bytes.len() as u64));
        let repo_tags = item.repo_tags.clone().unwrap_or_default();
        if let Some(first) = repo_tags.first() {
            let mut annotations = JsonObject::new();
            annotations.set(REF_NAME_ANNOTATION, first);
            entry.set_object("annotations", &annotations);
        }
        self.blobs.insert(digest, Blob::Memory(bytes));
        self.images.push(ArchiveImage {
            ref_name: repo_tags.first().cloned(),
            repo_tags,
            config: config_digest.clone(),
        });
        let synth = Synthesised {
            config: config_digest,
            layers: layers.len(),
        };
        Ok((entry, synth))
    }

    /// Every valid tag of every image, mapped to its image's ref name (the first tag).
    fn legacy_tags(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for image in &self.images {
            let Some(ref_name) = &image.ref_name else {
                continue;
            };
            for tag in &image.repo_tags {
                if let Ok(n) = normalize_reference(tag) {
                    out.push((n, ref_name.clone()));
                }
            }
        }
        out
    }

    fn sniff(&self, name: &str) -> Result<Compression, StoreError> {
        let mut head = Vec::with_capacity(4);
        self.tar
            .open_file(name)
            .expect("member() checked it")
            .take(4)
            .read_to_end(&mut head)
            .map_err(|e| StoreError::io("reading", self.tar.path(), e))?;
        Ok(Compression::sniff(&head))
    }

    /// Hash a compressed layer file and check that its decompressed content is `diff_id`, in
    /// one read.
    fn hash_compressed(
        &self,
        name: &str,
        kind: Compression,
        diff_id: &Digest,
    ) -> Result<Compressed, StoreError> {
        let mut raw = HashingReader::new(
            self.tar.open_file(name).expect("member() checked it"),
            Algorithm::Sha256,
        );
        let mut plain = Hasher::new(diff_id.algorithm());
        let decoded = (|| -> io::Result<()> {
            let mut decoder = decoder(kind, &mut raw)?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = decoder.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                plain.update(&buf[..n]);
            }
            drop(decoder);
            // Trailing bytes the decoder did not need still belong to the blob.
            io::copy(&mut raw, &mut io::sink())?;
            Ok(())
        })();
        decoded.map_err(|e| self.bad(format!("layer `{name}` cannot be decompressed: {e}")))?;
        let actual = plain.finish();
        if actual != *diff_id {
            return Err(self.bad(format!(
                "layer `{name}` decompresses to {actual}, but the config's diff_id is {diff_id}"
            )));
        }
        let media_type = match kind {
            Compression::Zstd => OCI_LAYER_ZSTD,
            _ => DOCKER_LAYER_GZIP,
        };
        Ok(Compressed {
            size: raw.count,
            digest: raw.hasher.finish(),
            media_type,
        })
    }

    /// The archive's own `index.json`, if it has one that lines up with `manifest.json`: every
    /// entry a manifest whose blobs are all in the archive, every item matched by config digest,
    /// and every tag of an item found on an entry with an unambiguous ref name. Returns the
    /// index, the tag map and each item's ref name.
    fn oci_view(&self, items: &[Synthesised]) -> Result<Option<OciView>, StoreError> {
        if !self.tar.contains("oci-layout") {
            return Ok(None);
        }
        let Some(bytes) = self.tar.read_file("index.json", MAX_INDEX_SIZE)? else {
            return Ok(None);
        };
        let Ok(index) = TopIndex::parse(&bytes) else {
            return Ok(None);
        };
        struct Entry {
            digest: Digest,
            config: Digest,
            layers: usize,
            ref_name: Option<String>,
            image_name: Option<String>,
        }
        let mut entries = Vec::new();
        for desc in &index.entries {
            if desc.media_type != OCI_MANIFEST && desc.media_type != DOCKER_MANIFEST {
                return Ok(None);
            }
            let Some((config, layers)) = self.check_oci_manifest(desc) else {
                return Ok(None);
            };
            entries.push(Entry {
                digest: desc.digest.clone(),
                config,
                layers,
                ref_name: desc.ref_name(),
                image_name: desc.annotation(CONTAINERD_IMAGE_NAME),
            });
        }
        // A ref name the engine selects by must stand for one manifest only.
        let mut by_ref: HashMap<&str, HashSet<&Digest>> = HashMap::new();
        for e in &entries {
            if let Some(r) = &e.ref_name {
                by_ref.entry(r).or_default().insert(&e.digest);
            }
        }
        let unambiguous = |r: &str| by_ref.get(r).is_some_and(|d| d.len() == 1);
        let mut tags = Vec::new();
        let mut refs = Vec::new();
        for (item, image) in items.iter().zip(&self.images) {
            let candidates: Vec<&Entry> = entries
                .iter()
                .filter(|e| e.config == item.config && e.layers == item.layers)
                .collect();
            if candidates.is_empty() {
                return Ok(None);
            }
            let mut first = None;
            for tag in &image.repo_tags {
                let Ok(wanted) = normalize_reference(tag) else {
                    continue;
                };
                let found = candidates.iter().find(|e| {
                    e.image_name
                        .as_deref()
                        .or(e.ref_name.as_deref())
                        .and_then(|n| normalize_reference(n).ok())
                        .is_some_and(|n| n == wanted)
                });
                let found = found.or(match candidates.as_slice() {
                    [only] => Some(only),
                    _ => None,
                });
                match found.and_then(|e| e.ref_name.as_deref()) {
                    Some(r) if unambiguous(r) => {
                        first.get_or_insert_with(|| r.to_string());
                        tags.push((wanted, r.to_string()));
                    }
                    _ => return Ok(None),
                }
            }
            refs.push(first);
        }
        Ok(Some(OciView {
            index: bytes,
            tags,
            refs,
        }))
    }

    /// The config digest and layer count of an OCI-form manifest, if it and every blob it
    /// needs are in the archive under `blobs/`.
    fn check_oci_manifest(&self, desc: &Descriptor) -> Option<(Digest, usize)> {
        if desc.size > MAX_MANIFEST_SIZE {
            return None;
        }
        let mut bytes = Vec::new();
        self.tar
            .open_verified(&blob_name(&desc.digest), &desc.digest, desc.size)?
            .read_to_end(&mut bytes)
            .ok()?;
        let doc = JsonObject::parse(&bytes).ok()?;
        let config = Descriptor::parse(doc.get_object("config").ok()??, "config").ok()?;
        if !self.tar.contains(&blob_name(&config.digest)) {
            return None;
        }
        let layers = doc.get_object_array("layers").ok()?.unwrap_or_default();
        for layer in &layers {
            let layer = Descriptor::parse(layer.clone(), "layer").ok()?;
            let foreign = is_foreign(&layer.json);
            if !foreign && !self.tar.contains(&blob_name(&layer.digest)) {
                return None;
            }
        }
        Some((config.digest, layers.len()))
    }
}

/// `blobs/<alg>/<hex>`.
fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

/// The sha256 hex a config file's name announces (`<hex>.json` or `blobs/sha256/<hex>`).
fn hex_in_name(name: &str) -> Option<&str> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let hex = base.strip_suffix(".json").unwrap_or(base);
    let is_hex = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let sha256_place = !name.contains('/') || name.starts_with("blobs/sha256/");
    (is_hex && sha256_place).then_some(hex)
}

/// A descriptor in Docker's field order (mediaType, size, digest).
fn descriptor(media_type: &str, size: u64, digest: &Digest) -> JsonObject {
    let mut d = JsonObject::new();
    d.set("mediaType", media_type);
    d.set("size", &size);
    d.set("digest", &digest.to_string());
    d
}

fn decoder<'a>(kind: Compression, raw: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match kind {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
    })
}

/// Hashes and counts what is read through it, and keeps the first error of its source, so
/// a failure to read can be told from a failure to write once the bytes have been copied.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
    failed: Option<io::Error>,
}

impl<R> HashingReader<R> {
    fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algorithm),
            count: 0,
            failed: None,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.failed.get_or_insert(e);
                return Err(copy);
            }
        };
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

impl BlobSource for DockerArchive {
    fn name(&self) -> &str {
        &self.name
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.index.clone())
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        let missing = || StoreError::MissingBlob {
            store: self.name.clone(),
            digest: digest.clone(),
        };
        match self.blobs.get(digest) {
            Some(Blob::Memory(bytes)) => Ok(Box::new(VerifyingReader::new(
                &bytes[..],
                digest.clone(),
                size,
            ))),
            Some(Blob::File(name)) => self
                .tar
                .open_verified(name, digest, size)
                .map(|r| Box::new(r) as Box<dyn Read + Send>)
                .ok_or_else(missing),
            // The Docker 25 form's blobs (its own manifests) are served by name.
            None => self
                .tar
                .open_verified(&blob_name(digest), digest, size)
                .map(|r| Box::new(r) as Box<dyn Read + Send>)
                .ok_or_else(missing),
        }
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.contains_key(digest) || self.tar.contains(&blob_name(digest))
    }
}

/// Normalise a Docker reference `[host[:port]/]path[:tag]` to `host/path:tag` as Docker's
/// `ParseNormalizedNamed` does (`alpine` → `docker.io/library/alpine:latest`). Digests are
/// refused: an archive names its images by tag.
pub fn normalize_reference(reference: &str) -> Result<String, ReferenceError> {
    let (name, tag) = split_reference(reference)?;
    Ok(format!("{name}:{}", tag.unwrap_or("latest")))
}

/// Split and normalise a reference into its full name and its tag, if it has one.
fn split_reference(reference: &str) -> Result<(String, Option<&str>), ReferenceError> {
    let fail = |reason: &str| ReferenceError {
        reference: reference.to_string(),
        reason: reason.to_string(),
    };
    if reference.contains('@') {
        return Err(fail("digest references are not supported; name a tag"));
    }
    let last_part = reference.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match reference[last_part..].rfind(':') {
        Some(i) => (
            &reference[..last_part + i],
            Some(&reference[last_part + i + 1..]),
        ),
        None => (reference, None),
    };
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let valid = tag.len() <= 128
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !valid {
            return Err(fail(
                "the tag may hold up to 128 letters, digits, `_`, `.` and `-`, and must not start with `.` or `-`",
            ));
        }
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    if !valid_domain(domain) {
        return Err(fail("the registry host is not valid"));
    }
    if !path.split('/').all(valid_path_component) {
        return Err(fail(
            "the repository must be lowercase letters and digits, separated by `/`, `.`, `_`, `__` or `-`",
        ));
    }
    let full = format!("{domain}/{path}");
    if full.len() > 255 {
        return Err(fail("the name is longer than 255 characters"));
    }
    Ok((full, tag))
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        });
    port_ok && host_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "."
            || sep == "_"
            || sep == "__"
            || (!sep.is_empty() && sep.bytes().all(|b| b == b'-'));
        if !ok {
            return false;
        }
    }
    true
}

/// The `RepoTags` entry for an index entry: its ref name, or else its containerd image name,
/// when that is a `name:tag` reference, written as skopeo writes it (`docker.io/library/x:t`).
fn repo_tag_of(entry: &Descriptor) -> Option<(String, String)> {
    [entry.ref_name(), entry.annotation(CONTAINERD_IMAGE_NAME)]
        .into_iter()
        .flatten()
        .find_map(|r| match split_reference(&r) {
            Ok((name, Some(tag))) => Some((name, tag.to_string())),
            _ => None,
        })
}

/// Writes a new `docker save` archive (the form skopeo writes), replacing the target whole at
/// commit.
pub struct DockerArchiveWriter {
    name: String,
    target: PathBuf,
    /// Blobs staged until the commit. Declared before `_temp` so it is dropped first.
    staging: OciLayoutWriter,
    _temp: TempDir,
    extra_tags: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for DockerArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerArchiveWriter")
            .field("target", &self.target)
            .field("staging", &self.staging)
            .finish()
    }
}

/// What the writer learned about one image while checking it.
struct PlannedImage {
    config: Digest,
    config_size: u64,
    diff_ids: Vec<Digest>,
    layers: Vec<Descriptor>,
    repo_tags: Vec<(String, String)>,
}

/// One item of the `manifest.json` skopeo writes (`Parent` and `LayerSources` are omitted, as
/// skopeo omits them).
#[derive(Serialize)]
struct WrittenItem {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

impl DockerArchiveWriter {
    /// A writer for the archive at `target`, staging blobs in a temporary directory beside it
    /// (same file system, so the final rename is atomic).
    pub fn create(target: &Path) -> Result<DockerArchiveWriter, StoreError> {
        let dir = parent_dir(target);
        // What killed runs left beside the target goes first.
        temp::sweep(&dir);
        let temp = TempDir::new_in(&dir)
            .map_err(|e| StoreError::io("creating a staging directory in", &dir, e))?;
        let staging = OciLayoutWriter::open(&temp.path().join("layout"))?;
        Ok(DockerArchiveWriter {
            name: format!("docker-archive:{}", target.display()),
            target: target.to_path_buf(),
            staging,
            _temp: temp,
            extra_tags: BTreeMap::new(),
        })
    }

    /// Give the images whose index entry has the ref name `ref_name` these `repo:tag`s too,
    /// besides the one their ref name provides (to keep every tag of a rewritten archive).
    pub fn add_repo_tags(&mut self, ref_name: &str, tags: &[String]) {
        self.extra_tags
            .entry(ref_name.to_string())
            .or_default()
            .extend(tags.iter().cloned());
    }

    fn cannot(&self, reason: impl Into<String>) -> StoreError {
        StoreError::CannotStore {
            store: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Check one index entry and everything it needs, before anything is written.
    fn plan_image(&self, n: usize, entry: &Descriptor) -> Result<PlannedImage, StoreError> {
        let at = format!("image {n} ({})", entry.digest);
        if entry.media_type != OCI_MANIFEST && entry.media_type != DOCKER_MANIFEST {
            return Err(self.cannot(format!(
                "{at} is a `{}`, not a single image manifest; a Docker archive holds one platform per image (select one with --platform)",
                entry.media_type
            )));
        }
        let bytes = self.staging.read_small_blob(
            "manifest",
            &entry.digest,
            entry.size,
            MAX_MANIFEST_SIZE,
        )?;
        let doc =
            JsonObject::parse(&bytes).map_err(|e| self.cannot(format!("manifest of {at}: {e}")))?;
        let config_obj = doc
            .get_object("config")
            .map_err(|e| self.cannot(format!("manifest of {at}: {e}")))?
            .ok_or_else(|| self.cannot(format!("manifest of {at} has no config")))?;
        let config = Descriptor::parse(config_obj, &format!("config of {at}"))
            .map_err(|e| self.cannot(e.to_string()))?;
        let layers = doc
            .get_object_array("layers")
            .map_err(|e| self.cannot(format!("manifest of {at}: {e}")))?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, l)| Descriptor::parse(l, &format!("layer {i} of {at}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.cannot(e.to_string()))?;
        let config_bytes = self.staging.read_small_blob(
            "config",
            &config.digest,
            config.size,
            MAX_MANIFEST_SIZE,
        )?;
        let parsed: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.cannot(format!("config {} of {at}: {e}", config.digest)))?;
        let diff_ids = parsed
            .rootfs
            .and_then(|r| r.diff_ids)
            .ok_or_else(|| {
                self.cannot(format!(
                    "config {} of {at} has no rootfs.diff_ids",
                    config.digest
                ))
            })?
            .iter()
            .map(|d| d.parse::<Digest>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.cannot(format!("config {} of {at}: {e}", config.digest)))?;
        if diff_ids.len() != layers.len() {
            return Err(self.cannot(format!(
                "{at} has {} layers, but its config {} has {} diff_ids",
                layers.len(),
                config.digest,
                diff_ids.len()
            )));
        }
        for (i, layer) in layers.iter().enumerate() {
            let what = format!("layer {i} ({}) of {at}", layer.digest);
            if layer.media_type.ends_with(ENCRYPTED_SUFFIX) {
                return Err(self.cannot(format!(
                    "{what} is encrypted, and a Docker archive cannot carry encryption metadata"
                )));
            }
            if is_foreign(&layer.json) || is_non_distributable(&layer.media_type) {
                return Err(self.cannot(format!(
                    "{what} is a foreign layer (`{}`) whose data is not in the image",
                    layer.media_type
                )));
            }
            if layer_compression(&layer.media_type).is_none() {
                return Err(self.cannot(format!(
                    "{what} has media type `{}`, which is not a filesystem layer",
                    layer.media_type
                )));
            }
            if !self.staging.has_blob(&layer.digest) {
                return Err(StoreError::MissingBlob {
                    store: self.name.clone(),
                    digest: layer.digest.clone(),
                });
            }
        }
        let mut repo_tags: Vec<(String, String)> = repo_tag_of(entry).into_iter().collect();
        if let Some(extra) = entry
            .ref_name()
            .and_then(|r| self.extra_tags.get(&r).cloned())
        {
            for tag in extra {
                match split_reference(&tag) {
                    Ok((name, Some(t))) => repo_tags.push((name, t.to_string())),
                    _ => {
                        return Err(
                            self.cannot(format!("`{tag}` is not a Docker `repo:tag` reference"))
                        );
                    }
                }
            }
        }
        Ok(PlannedImage {
            config: config.digest,
            config_size: config.size,
            diff_ids,
            layers,
            repo_tags,
        })
    }

    /// Decompress a staged layer into the archive as `<diffid-hex>.tar`, checking the result
    /// against its diff id.
    fn write_layer(
        &self,
        tar: &mut super::tarball::TarWriter,
        layer: &Descriptor,
        diff_id: &Digest,
        what: &str,
    ) -> Result<(), StoreError> {
        let kind = layer_compression(&layer.media_type).expect("checked while planning");
        let mut blob = self.staging.open_blob(&layer.digest, layer.size)?;
        let name = format!("{}.tar", diff_id.hex());
        let (written, hasher, failed) = {
            // Read the staged blob in large pieces: the decoders' own buffers are small.
            let raw = io::BufReader::with_capacity(AlignedBuf::CAPACITY, &mut blob);
            let mut plain = HashingReader::new(
                decoder(kind, raw).map_err(|e| self.cannot(format!("{what}: {e}")))?,
                diff_id.algorithm(),
            );
            let written = tar.add_file_unsized(&name, &mut plain);
            (written, plain.hasher, plain.failed)
        };
        if let Some(e) = failed {
            return Err(match VerifyError::from_io(&e) {
                Some(_) => StoreError::from_blob_read(&self.name, &layer.digest, e),
                None => self.cannot(format!("{what} could not be decompressed: {e}")),
            });
        }
        written?;
        // Read the compressed blob to its end, so its own digest is verified too.
        io::copy(&mut blob, &mut io::sink())
            .map_err(|e| StoreError::from_blob_read(&self.name, &layer.digest, e))?;
        let actual = hasher.finish();
        if actual != *diff_id {
            return Err(self.cannot(format!(
                "{what} decompresses to {actual}, but its config's diff_id is {diff_id}"
            )));
        }
        Ok(())
    }
}

/// Go's `json.Compact` with HTML escaping, as `json.Marshal` applies it to a `RawMessage`:
/// whitespace outside strings dropped, `<`, `>`, `&`, U+2028 and U+2029 escaped inside them.
fn go_compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            match c {
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' if !escaped => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                    continue;
                }
                _ => {}
            }
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// A JSON object with members sorted by name, as Go marshals a `map[string]any`; values are
/// JSON text.
fn go_sorted_object(members: &BTreeMap<&str, String>) -> Vec<u8> {
    let mut out = vec![b'{'];
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_go_string(&mut out, k);
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'}');
    out
}

/// The config attributes skopeo copies into the top legacy layer's `json`.
const LEGACY_TOP_ATTRIBUTES: [&str; 7] = [
    "architecture",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
];

/// The legacy (pre-1.10) layer ids and `json` files of an image, computed as skopeo does so
/// that an archive written here matches one skopeo writes: each id is the sha256 of the layer
/// config with its chain id in `layer_id`.
fn legacy_layers(config: &[u8], diff_ids: &[Digest]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(diff_ids.len());
    let mut chain: Option<Digest> = None;
    for (i, diff_id) in diff_ids.iter().enumerate() {
        let mut members: BTreeMap<&str, String> = BTreeMap::new();
        if let Some((parent, _)) = out.last() {
            members.insert(
                "parent",
                String::from_utf8(to_go_vec(parent)).expect("utf-8"),
            );
        }
        if i + 1 == diff_ids.len() {
            let attributes: HashMap<String, Box<RawValue>> = serde_json::from_slice(config)
                .map_err(|e| format!("the config is not a JSON object: {e}"))?;
            for attr in LEGACY_TOP_ATTRIBUTES {
                let value = attributes
                    .get(attr)
                    .map_or_else(|| "null".to_string(), |raw| go_compact(raw.get()));
                members.insert(attr, value);
            }
        }
        let next = match &chain {
            None => diff_id.clone(),
            Some(c) => Digest::sha256(format!("{c} {diff_id}").as_bytes()),
        };
        members.insert(
            "layer_id",
            String::from_utf8(to_go_vec(&next.to_string())).expect("utf-8"),
        );
        let id = Digest::sha256(&go_sorted_object(&members))
            .hex()
            .to_string();
        members.remove("layer_id");
        members.insert("id", String::from_utf8(to_go_vec(&id)).expect("utf-8"));
        out.push((id, go_sorted_object(&members)));
        chain = Some(next);
    }
    Ok(out)
}

impl BlobSource for DockerArchiveWriter {
    fn name(&self) -> &str {
        &self.name
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        self.staging.read_index()
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        self.staging.open_blob(digest, size)
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.staging.has_blob(digest)
    }
}

impl StoreWriter for DockerArchiveWriter {
    fn existing_index(&self) -> Result<Option<Vec<u8>>, StoreError> {
        // The archive is always written whole; nothing is merged into an existing one.
        Ok(None)
    }

    fn create_blob(&self, algorithm: Algorithm) -> Result<Box<dyn BlobSink + '_>, StoreError> {
        self.staging.create_blob(algorithm)
    }

    fn commit(
        self: Box<Self>,
        index: &[u8],
        _garbage: &[Digest],
    ) -> Result<CommitReport, StoreError> {
        let top = TopIndex::parse(index).map_err(|e| self.cannot(format!("the index: {e}")))?;
        // Check every image before writing anything.
        let planned = top
            .entries
            .iter()
            .enumerate()
            .map(|(n, entry)| self.plan_image(n, entry))
            .collect::<Result<Vec<_>, _>>()?;

        let mut tar = super::tarball::TarWriter::create(&self.target)?;
        let mut items: Vec<WrittenItem> = Vec::new();
        let mut item_by_config: HashMap<Digest, usize> = HashMap::new();
        let mut written_layers: HashSet<Digest> = HashSet::new();
        let mut written_configs: HashSet<Digest> = HashSet::new();
        let mut legacy_written: HashSet<String> = HashSet::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (n, image) in planned.iter().enumerate() {
            for (i, (layer, diff_id)) in image.layers.iter().zip(&image.diff_ids).enumerate() {
                if written_layers.insert(diff_id.clone()) {
                    let what = format!("layer {i} ({}) of image {n}", layer.digest);
                    self.write_layer(&mut tar, layer, diff_id, &what)?;
                }
            }
            let config_bytes = self.staging.read_small_blob(
                "config",
                &image.config,
                image.config_size,
                MAX_MANIFEST_SIZE,
            )?;
            let config_name = format!("{}.json", image.config.hex());
            if written_configs.insert(image.config.clone()) {
                tar.add_bytes(&config_name, &config_bytes)?;
            }
            let legacy = legacy_layers(&config_bytes, &image.diff_ids)
                .map_err(|e| self.cannot(format!("config {} of image {n}: {e}", image.config)))?;
            for ((id, json), diff_id) in legacy.iter().zip(&image.diff_ids) {
                if legacy_written.insert(id.clone()) {
                    tar.add_symlink(
                        &format!("{id}/layer.tar"),
                        &format!("../{}.tar", diff_id.hex()),
                    )?;
                    tar.add_bytes(&format!("{id}/VERSION"), b"1.0")?;
                    tar.add_bytes(&format!("{id}/json"), json)?;
                }
            }
            let layer_names: Vec<String> = image
                .diff_ids
                .iter()
                .map(|d| format!("{}.tar", d.hex()))
                .collect();
            let slot = *item_by_config
                .entry(image.config.clone())
                .or_insert_with(|| {
                    items.push(WrittenItem {
                        config: config_name.clone(),
                        repo_tags: Vec::new(),
                        layers: layer_names.clone(),
                    });
                    items.len() - 1
                });
            if items[slot].layers != layer_names {
                return Err(self.cannot(format!(
                    "image {n} shares config {} with an earlier image but has other layers",
                    image.config
                )));
            }
            for (name, tag) in &image.repo_tags {
                let text = format!("{name}:{tag}");
                if !items[slot].repo_tags.contains(&text) {
                    items[slot].repo_tags.push(text);
                }
                if let Some((top_id, _)) = legacy.last() {
                    repositories
                        .entry(name.clone())
                        .or_default()
                        .insert(tag.clone(), top_id.clone());
                }
            }
        }
        tar.add_bytes(MANIFEST_FILE, &to_go_vec(&items))?;
        tar.add_bytes(REPOSITORIES_FILE, &to_go_vec(&repositories))?;
        tar.finish(0o644)?;
        Ok(CommitReport::default())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::*;
    use crate::image::{Node, load_node};

    /// What a test archive holds.
    enum Item<'a> {
        File(&'a str, Vec<u8>),
        Link(&'a str, &'a str),
    }
    use Item::{File, Link};

    fn write_tar(path: &Path, items: &[Item]) {
        let mut b = tar::Builder::new(fs::File::create(path).unwrap());
        for item in items {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match item {
                File(name, data) => {
                    h.set_size(data.len() as u64);
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(&mut h, name, &data[..]).unwrap();
                }
                Link(name, target) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, name, target).unwrap();
                }
            }
        }
        b.finish().unwrap();
    }

    /// A layer: a tar holding one file.
    fn layer(content: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, "file", content.as_bytes()).unwrap();
        b.into_inner().unwrap()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn config(diff_ids: &[&Digest]) -> Vec<u8> {
        let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids},
        }))
        .unwrap()
    }

    fn manifest_json(items: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&items).unwrap()
    }

    fn open(items: &[Item]) -> (tempfile::TempDir, Result<DockerArchive, StoreError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        write_tar(&path, items);
        let archive = DockerArchive::open(&path, false);
        (dir, archive)
    }

    fn reason(items: &[Item]) -> String {
        match open(items).1 {
            Err(StoreError::BadArchive { reason, .. }) => reason,
            other => panic!("accepted, or the wrong error: {other:?}"),
        }
    }

    /// The manifests of every index entry, loaded as the engine loads them, with every blob
    /// read to its end (which verifies it).
    fn load(archive: &DockerArchive) -> Vec<crate::image::ManifestNode> {
        let index = TopIndex::parse(&archive.read_index().unwrap()).unwrap();
        let mut out = Vec::new();
        for entry in index.entries {
            let Node::Manifest(m) = load_node(archive, entry, 0).unwrap() else {
                panic!("not a manifest");
            };
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if is_foreign(&d.json) {
                    continue;
                }
                let mut r = archive.open_blob(&d.digest, d.size).unwrap();
                io::copy(&mut r, &mut io::sink()).unwrap();
            }
            out.push(*m);
        }
        out
    }

    #[test]
    fn legacy_archive_with_linked_layers_and_several_tags() {
        let (base, app) = (layer("base"), layer("app"));
        let (d_base, d_app) = (Digest::sha256(&base), Digest::sha256(&app));
        let (c1, c2) = (config(&[&d_base]), config(&[&d_base, &d_app]));
        let (h1, h2) = (Digest::sha256(&c1), Digest::sha256(&c2));
        let items = manifest_json(serde_json::json!([
            {"Config": format!("{}.json", h1.hex()), "RepoTags": ["alpine:3"], "Layers": ["aaa/layer.tar"]},
            {"Config": format!("{}.json", h2.hex()),
             "RepoTags": ["myapp:1", "registry.example.com:5000/team/myapp:1"],
             "Layers": ["bbb/layer.tar", "ccc/layer.tar"]},
        ]));
        let c1_name = format!("{}.json", h1.hex());
        let c2_name = format!("{}.json", h2.hex());
        let (_dir, archive) = open(&[
            File("aaa/layer.tar", base),
            Link("bbb/layer.tar", "../aaa/layer.tar"),
            File("ccc/layer.tar", app),
            File(&c1_name, c1),
            File(&c2_name, c2),
            File("manifest.json", items),
        ]);
        let archive = archive.unwrap();
        assert!(!archive.serves_oci_index());
        assert!(archive.name().starts_with("docker-archive:"));

        let manifests = load(&archive);
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[0].desc.ref_name().as_deref(), Some("alpine:3"));
        assert_eq!(manifests[1].desc.ref_name().as_deref(), Some("myapp:1"));
        assert_eq!(manifests[1].config.digest, h2);
        assert_eq!(manifests[1].config.media_type, DOCKER_CONFIG);
        let layers: Vec<_> = manifests[1].layers.iter().map(|l| &l.digest).collect();
        assert_eq!(layers, [&d_base, &d_app]);
        assert!(
            manifests[1]
                .layers
                .iter()
                .all(|l| l.media_type == DOCKER_LAYER)
        );
        assert_eq!(
            manifests[0].platform.as_ref().map(ToString::to_string),
            Some("linux/amd64".to_string())
        );
        // Docker's field order, compact.
        let bytes = archive
            .read_small_blob(
                "manifest",
                &manifests[0].desc.digest,
                manifests[0].desc.size,
                1 << 20,
            )
            .unwrap();
        let expect = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":{},"digest":"{h1}"}},"layers":[{{"mediaType":"{DOCKER_LAYER}","size":{},"digest":"{d_base}"}}]}}"#,
            manifests[0].config.size, manifests[0].layers[0].size
        );
        assert_eq!(String::from_utf8(bytes).unwrap(), expect);

        for (reference, expected) in [
            ("alpine:3", Some("alpine:3")),
            ("docker.io/library/alpine:3", Some("alpine:3")),
            ("index.docker.io/library/alpine:3", Some("alpine:3")),
            ("docker.io/library/myapp:1", Some("myapp:1")),
            ("registry.example.com:5000/team/myapp:1", Some("myapp:1")),
            ("alpine", None),
            ("myapp:2", None),
        ] {
            assert_eq!(
                archive.resolve(reference).unwrap().as_deref(),
                expected,
                "{reference}"
            );
        }
        assert!(archive.resolve("Not A Ref").is_err());
        assert!(archive.resolve("alpine@sha256:abc").is_err());
        assert_eq!(archive.images()[1].repo_tags.len(), 2);
    }

    #[test]
    fn skopeo_form_and_untagged_images() {
        let l = layer("x");
        let d = Digest::sha256(&l);
        let c = config(&[&d]);
        let h = Digest::sha256(&c);
        let layer_name = format!("{}.tar", d.hex());
        let config_name = format!("{}.json", h.hex());
        let (_dir, archive) = open(&[
            File(&layer_name, l),
            File(&config_name, c),
            Link("0123/layer.tar", &format!("../{layer_name}")),
            File("0123/VERSION", b"1.0".to_vec()),
            File(
                "manifest.json",
                manifest_json(serde_json::json!([
                    {"Config": config_name, "RepoTags": [], "Layers": [layer_name]},
                    {"Config": format!("./{config_name}"), "RepoTags": null, "Layers": [format!("0123/layer.tar")]},
                ])),
            ),
            File("repositories", b"{}".to_vec()),
        ]);
        let archive = archive.unwrap();
        let manifests = load(&archive);
        assert_eq!(manifests.len(), 2);
        assert!(manifests.iter().all(|m| m.desc.ref_name().is_none()));
        assert_eq!(manifests[0].layers[0].digest, d);
        assert_eq!(manifests[0].desc.digest, manifests[1].desc.digest);
        assert_eq!(archive.resolve("anything:1").unwrap(), None);
    }

    #[test]
    fn gzip_and_zstd_layers_are_hashed_and_checked_at_open() {
        let (a, b) = (layer("gz"), layer("zst"));
        let (da, db) = (Digest::sha256(&a), Digest::sha256(&b));
        let ga = gzip(&a);
        let zb = zstd::encode_all(&b[..], 3).unwrap();
        let c = config(&[&da, &db]);
        let cname = format!("{}.json", Digest::sha256(&c).hex());
        let manifest = manifest_json(serde_json::json!([
            {"Config": cname, "RepoTags": ["a:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}
        ]));
        let (_dir, archive) = open(&[
            File("a/layer.tar", ga.clone()),
            File("b/layer.tar", zb.clone()),
            File(&cname, c.clone()),
            File("manifest.json", manifest.clone()),
        ]);
        let archive = archive.unwrap();
        let m = load(&archive).remove(0);
        assert_eq!(m.layers[0].media_type, DOCKER_LAYER_GZIP);
        assert_eq!(m.layers[0].digest, Digest::sha256(&ga));
        assert_eq!(m.layers[0].size, ga.len() as u64);
        assert_eq!(m.layers[1].media_type, OCI_LAYER_ZSTD);
        assert_eq!(m.layers[1].digest, Digest::sha256(&zb));

        // A compressed layer whose content is not its diff id is refused at open, naming both.
        let wrong = gzip(&layer("other"));
        let r = reason(&[
            File("a/layer.tar", wrong),
            File("b/layer.tar", zb),
            File(&cname, c),
            File("manifest.json", manifest),
        ]);
        assert!(
            r.contains("a/layer.tar") && r.contains(&da.to_string()),
            "{r}"
        );
    }

    #[test]
    fn foreign_layers_come_from_layer_sources() {
        let (base, top) = (layer("windows base"), layer("top"));
        let (d_base, d_top) = (Digest::sha256(&base), Digest::sha256(&top));
        let c = config(&[&d_base, &d_top]);
        let cname = format!("{}.json", Digest::sha256(&c).hex());
        let remote = Digest::sha256(b"remote compressed bytes");
        let foreign = serde_json::json!({
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "size": 1234,
            "digest": remote.to_string(),
            "urls": ["https://example.com/base"],
        });
        let (_dir, archive) = open(&[
            File("top.tar", top),
            File(&cname, c),
            File(
                "manifest.json",
                manifest_json(serde_json::json!([{
                    "Config": cname, "RepoTags": ["win:1"],
                    "Layers": ["base.tar", "top.tar"],
                    "LayerSources": {d_base.to_string(): foreign},
                }])),
            ),
        ]);
        let archive = archive.unwrap();
        let m = load(&archive).remove(0);
        assert_eq!(m.layers[0].digest, remote);
        assert_eq!(
            m.layers[0].media_type,
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
        );
        assert!(m.layers[0].json.contains("urls"));
        assert!(!archive.has_blob(&remote));
        assert_eq!(m.layers[1].digest, d_top);
    }

    /// A Docker 25 archive: the same image as `manifest.json` lists it, plus an OCI layout.
    fn docker25(manifest_layers: bool, second_ref: Option<&str>) -> Vec<(String, Vec<u8>)> {
        let l = layer("d25");
        let d = Digest::sha256(&l);
        let c = config(&[&d]);
        let h = Digest::sha256(&c);
        let layers = if manifest_layers {
            serde_json::json!([{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d.to_string(), "size": l.len()}])
        } else {
            serde_json::json!([])
        };
        let oci = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": h.to_string(), "size": c.len()},
            "layers": layers,
        }))
        .unwrap();
        let md = Digest::sha256(&oci);
        let entry = |name: &str, tag: &str| {
            serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": md.to_string(), "size": oci.len(),
                "annotations": {CONTAINERD_IMAGE_NAME: name, REF_NAME_ANNOTATION: tag},
            })
        };
        let mut entries = vec![entry("docker.io/library/myapp:1.0", "1.0")];
        let mut tags = vec!["myapp:1.0".to_string()];
        if let Some(r) = second_ref {
            entries.push(entry(&format!("docker.io/library/other:{r}"), r));
            tags.push(format!("other:{r}"));
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
        }))
        .unwrap();
        vec![
            (blob_name(&d), l),
            (blob_name(&h), c),
            (blob_name(&md), oci),
            ("index.json".into(), index),
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            (
                "manifest.json".into(),
                manifest_json(serde_json::json!([{
                    "Config": blob_name(&h), "RepoTags": tags, "Layers": [blob_name(&d)],
                }])),
            ),
        ]
    }

    fn open_owned(files: &[(String, Vec<u8>)]) -> (tempfile::TempDir, DockerArchive) {
        let items: Vec<Item> = files.iter().map(|(n, d)| File(n, d.clone())).collect();
        let (dir, archive) = open(&items);
        (dir, archive.unwrap())
    }

    #[test]
    fn docker25_form_serves_its_own_index() {
        let files = docker25(true, Some("2.0"));
        let (_dir, archive) = open_owned(&files);
        assert!(archive.serves_oci_index());
        assert_eq!(archive.read_index().unwrap(), files[3].1);
        assert_eq!(
            archive.resolve("myapp:1.0").unwrap().as_deref(),
            Some("1.0")
        );
        assert_eq!(
            archive.resolve("other:2.0").unwrap().as_deref(),
            Some("2.0")
        );
        assert_eq!(archive.images()[0].ref_name.as_deref(), Some("1.0"));
        let manifests = load(&archive);
        assert_eq!(manifests.len(), 2);
        assert_eq!(manifests[0].desc.digest, Digest::sha256(&files[2].1));
    }

    #[test]
    fn docker25_form_falls_back_when_its_index_does_not_line_up() {
        // Docker 25.0.0 wrote OCI manifests without their layers.
        let (_dir, archive) = open_owned(&docker25(false, None));
        assert!(!archive.serves_oci_index());
        assert_eq!(
            archive.resolve("myapp:1.0").unwrap().as_deref(),
            Some("myapp:1.0")
        );
        let m = load(&archive).remove(0);
        assert_eq!(m.layers.len(), 1);
        // Two tags on one manifest may share a ref name (`1.0`): still one manifest per name.
        let (_dir, archive) = open_owned(&docker25(true, Some("1.0")));
        assert!(archive.serves_oci_index());
        assert_eq!(
            archive.resolve("other:1.0").unwrap().as_deref(),
            Some("1.0")
        );

        // A ref name that stands for two different (valid) manifests would select both.
        let mut files = docker25(true, None);
        let mut twin: serde_json::Value = serde_json::from_slice(&files[2].1).unwrap();
        twin["annotations"] = serde_json::json!({"x": "y"});
        let twin = serde_json::to_vec(&twin).unwrap();
        let mut index: serde_json::Value = serde_json::from_slice(&files[3].1).unwrap();
        let mut other = index["manifests"][0].clone();
        other["digest"] = Digest::sha256(&twin).to_string().into();
        other["size"] = twin.len().into();
        other["annotations"][CONTAINERD_IMAGE_NAME] = "docker.io/library/else:1.0".into();
        index["manifests"].as_array_mut().unwrap().push(other);
        files[3].1 = serde_json::to_vec(&index).unwrap();
        files.push((blob_name(&Digest::sha256(&twin)), twin));
        let (_dir, archive) = open_owned(&files);
        assert!(!archive.serves_oci_index());
        assert_eq!(
            archive.resolve("myapp:1.0").unwrap().as_deref(),
            Some("myapp:1.0")
        );
    }

    #[test]
    fn hostile_archives_are_refused_with_precise_reasons() {
        let l = layer("x");
        let d = Digest::sha256(&l);
        let c = config(&[&d]);
        let cname = format!("{}.json", Digest::sha256(&c).hex());
        let item = |layers: serde_json::Value| {
            manifest_json(
                serde_json::json!([{"Config": cname, "RepoTags": ["a:1"], "Layers": layers}]),
            )
        };
        let empty_config = format!("{}.json", Digest::sha256(b"{}").hex());
        let cases: Vec<(Vec<Item>, &str)> = vec![
            (vec![File("x", vec![])], "no manifest.json"),
            (
                vec![File("manifest.json", b"{not json".to_vec())],
                "manifest.json is not valid",
            ),
            (
                vec![File("manifest.json", b"{}".to_vec())],
                "manifest.json is not valid",
            ),
            (
                vec![File("manifest.json", b"[]".to_vec())],
                "lists no images",
            ),
            (
                vec![File("manifest.json", item(serde_json::json!(["l.tar"])))],
                "config `",
            ),
            (
                vec![
                    File("l.tar", l.clone()),
                    File(&cname, c.clone()),
                    File("manifest.json", item(serde_json::json!(["l.tar", "l.tar"]))),
                ],
                "lists 2 layers, but its config",
            ),
            (
                vec![
                    File(&cname, c.clone()),
                    File("manifest.json", item(serde_json::json!(["missing.tar"]))),
                ],
                "layer 0 `missing.tar` is not in the archive",
            ),
            (
                vec![
                    File(&cname, c.clone()),
                    File(
                        "manifest.json",
                        item(serde_json::json!(["../../etc/passwd"])),
                    ),
                ],
                "`..`",
            ),
            (
                vec![
                    File("l.tar", l.clone()),
                    File(&cname, b"{\"rootfs\":".to_vec()),
                    File("manifest.json", item(serde_json::json!(["l.tar"]))),
                ],
                "but its name says",
            ),
            (
                vec![
                    File("l.tar", l.clone()),
                    File(&empty_config, b"{}".to_vec()),
                    File(
                        "manifest.json",
                        manifest_json(serde_json::json!([{
                            "Config": empty_config,
                            "Layers": ["l.tar"],
                        }])),
                    ),
                ],
                "has no rootfs.diff_ids",
            ),
        ];
        for (items, expect) in cases {
            let r = reason(&items);
            assert!(r.contains(expect), "expected `{expect}` in: {r}");
        }
    }

    #[test]
    fn a_plain_layer_that_is_not_its_diff_id_fails_when_read() {
        let l = layer("x");
        let claimed = Digest::sha256(b"something else");
        let c = config(&[&claimed]);
        let cname = format!("{}.json", Digest::sha256(&c).hex());
        let (_dir, archive) = open(&[
            File("l.tar", l.clone()),
            File(&cname, c),
            File(
                "manifest.json",
                manifest_json(serde_json::json!([{"Config": cname, "Layers": ["l.tar"]}])),
            ),
        ]);
        let archive = archive.unwrap();
        let mut r = archive.open_blob(&claimed, l.len() as u64).unwrap();
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(matches!(
            VerifyError::from_io(&e),
            Some(VerifyError::DigestMismatch { .. })
        ));
    }

    #[test]
    fn references_normalise_like_docker() {
        for (input, expected) in [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.19", "docker.io/library/alpine:3.19"),
            ("library/alpine", "docker.io/library/alpine:latest"),
            ("docker.io/alpine:1", "docker.io/library/alpine:1"),
            ("user/app:v_1.0-rc", "docker.io/user/app:v_1.0-rc"),
            ("localhost/app:1", "localhost/app:1"),
            ("localhost:5000/a/b:2", "localhost:5000/a/b:2"),
            ("quay.io/org/my__app-x:tag", "quay.io/org/my__app-x:tag"),
            ("Example.com/app:1", "Example.com/app:1"),
        ] {
            assert_eq!(normalize_reference(input).unwrap(), expected, "{input}");
        }
        for bad in [
            "",
            "UPPER:1",
            "app:",
            "app:-x",
            "a//b",
            "app@sha256:00",
            "app_:1",
            "host:port/a",
            ":tag",
            "a/-b",
        ] {
            assert!(normalize_reference(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn go_compact_escapes_like_go() {
        assert_eq!(
            go_compact("{ \"a\" : [1, 2],\n \"b\":\"x <&> \\\" \u{2028}\" }"),
            "{\"a\":[1,2],\"b\":\"x \\u003c\\u0026\\u003e \\\" \\u2028\"}"
        );
    }

    fn testdata(path: &str) -> Vec<u8> {
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
    }

    const PLAIN: &str = "testdata/images/plain/blobs/sha256";
    const PLAIN_MANIFEST: &str = "8eb108e66e7fd82fd27f3711f4bf0cee9d67129f8414fc10849cff355d68255b";
    const PLAIN_CONFIG: &str = "6502993109d8291170b4d3916b6308d0997ed889cd72b9152cc9c7132c466c83";

    /// Known answer: the legacy layer ids skopeo 1.9.3 wrote for `testdata/images/plain:v1`.
    #[test]
    fn legacy_layer_ids_match_skopeo() {
        let config = testdata(&format!("{PLAIN}/{PLAIN_CONFIG}"));
        let parsed: ImageConfig = serde_json::from_slice(&config).unwrap();
        let diff_ids: Vec<Digest> = parsed
            .rootfs
            .unwrap()
            .diff_ids
            .unwrap()
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
        let legacy = legacy_layers(&config, &diff_ids).unwrap();
        let ids: Vec<&str> = legacy.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "6e446dc2fd5c9fd04f98046244216927879e05125332da61a4b2235ea3fdc625",
                "b24eaaa207acec6a91690b81af49c4f9b1d3f883b37a07797931a0959a100d76",
                "dcf6161a49ca961eb3c8eda9eec925cf17a003c9d5409a1a6d6927911de1bbe5",
            ]
        );
        assert_eq!(
            String::from_utf8(legacy[1].1.clone()).unwrap(),
            r#"{"id":"b24eaaa207acec6a91690b81af49c4f9b1d3f883b37a07797931a0959a100d76","parent":"6e446dc2fd5c9fd04f98046244216927879e05125332da61a4b2235ea3fdc625"}"#
        );
        assert!(
            String::from_utf8(legacy[2].1.clone())
                .unwrap()
                .starts_with(r#"{"architecture":"amd64","config":{"Env":"#)
        );
    }

    /// Stage the `plain` test image (three gzip layers) into a writer, under `ref_name`.
    fn stage_plain(w: &DockerArchiveWriter, ref_name: &str) -> Vec<u8> {
        for entry in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(PLAIN)).unwrap() {
            let data = fs::read(entry.unwrap().path()).unwrap();
            w.put_blob(&data).unwrap();
        }
        let size = testdata(&format!("{PLAIN}/{PLAIN_MANIFEST}")).len();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST, "digest": format!("sha256:{PLAIN_MANIFEST}"), "size": size,
                "annotations": {REF_NAME_ANNOTATION: ref_name},
            }],
        }))
        .unwrap()
    }

    #[test]
    fn written_archive_matches_skopeo_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        fs::write(&target, b"old archive").unwrap();
        let w = Box::new(DockerArchiveWriter::create(&target).unwrap());
        assert!(w.existing_index().unwrap().is_none());
        let index = stage_plain(&w, "layercrypt/plain:v1");
        assert_eq!(fs::read(&target).unwrap(), b"old archive");
        w.commit(&index, &[]).unwrap();
        // Only the archive is left: no staging directory, no temporary file.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        let tar = Tarball::open(&target, false).unwrap();
        // What skopeo 1.9.3 wrote for `docker-archive:…:layercrypt/plain:v1`.
        assert_eq!(
            String::from_utf8(tar.read_file("manifest.json", 1 << 20).unwrap().unwrap()).unwrap(),
            r#"[{"Config":"6502993109d8291170b4d3916b6308d0997ed889cd72b9152cc9c7132c466c83.json","RepoTags":["docker.io/layercrypt/plain:v1"],"Layers":["81408c13bdc3c4d4f226b98256e394f7334261a9160136d09686a131ccb17761.tar","bdf6a2570d5795aa6997a585b5d377e980eb642766908c3882d1abf3bd885e46.tar","edf3a9fd3bf16e24878adcd74107d1022955ee8e872f44df58237b1bddf9ad90.tar"]}]"#
        );
        assert_eq!(
            String::from_utf8(tar.read_file("repositories", 1 << 20).unwrap().unwrap()).unwrap(),
            r#"{"docker.io/layercrypt/plain":{"v1":"dcf6161a49ca961eb3c8eda9eec925cf17a003c9d5409a1a6d6927911de1bbe5"}}"#
        );
        let names: Vec<&str> = tar.index().names().collect();
        assert_eq!(names.len(), 3 + 1 + 3 * 3 + 2, "{names:?}");
        let top = "dcf6161a49ca961eb3c8eda9eec925cf17a003c9d5409a1a6d6927911de1bbe5";
        assert_eq!(
            tar.index().get(&format!("{top}/layer.tar")),
            tar.index()
                .get("edf3a9fd3bf16e24878adcd74107d1022955ee8e872f44df58237b1bddf9ad90.tar")
        );
        assert_eq!(
            tar.read_file(&format!("{top}/VERSION"), 10)
                .unwrap()
                .unwrap(),
            b"1.0"
        );
        drop(tar);

        // Read back: every layer is its diff id and decompresses to what was staged.
        let archive = DockerArchive::open(&target, false).unwrap();
        assert_eq!(
            archive
                .resolve("docker.io/layercrypt/plain:v1")
                .unwrap()
                .as_deref(),
            Some("docker.io/layercrypt/plain:v1")
        );
        let m = load(&archive).remove(0);
        let staged: serde_json::Value =
            serde_json::from_slice(&testdata(&format!("{PLAIN}/{PLAIN_MANIFEST}"))).unwrap();
        for (i, layer) in m.layers.iter().enumerate() {
            assert_eq!(layer.media_type, DOCKER_LAYER);
            let gz = testdata(&format!(
                "{PLAIN}/{}",
                staged["layers"][i]["digest"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("sha256:")
            ));
            let mut original = Vec::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_end(&mut original)
                .unwrap();
            assert_eq!(layer.digest, Digest::sha256(&original));
            let mut back = Vec::new();
            archive
                .open_blob(&layer.digest, layer.size)
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, original);
        }
    }

    #[test]
    fn untagged_and_extra_tags() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        let mut w = DockerArchiveWriter::create(&target).unwrap();
        w.add_repo_tags("v1", &["example.com:5000/x/y:2".to_string()]);
        let w = Box::new(w);
        // A bare tag (as `oci:DIR:v1` names images) is no Docker reference: untagged...
        let index = stage_plain(&w, "v1");
        w.commit(&index, &[]).unwrap();
        let tar = Tarball::open(&target, false).unwrap();
        let manifest =
            String::from_utf8(tar.read_file("manifest.json", 1 << 20).unwrap().unwrap()).unwrap();
        // ...but the tags added for its ref name are written.
        assert!(
            manifest.contains(r#""RepoTags":["example.com:5000/x/y:2"]"#),
            "{manifest}"
        );

        let target = dir.path().join("untagged.tar");
        let w = Box::new(DockerArchiveWriter::create(&target).unwrap());
        let index = stage_plain(&w, "v1");
        w.commit(&index, &[]).unwrap();
        let tar = Tarball::open(&target, false).unwrap();
        let manifest =
            String::from_utf8(tar.read_file("manifest.json", 1 << 20).unwrap().unwrap()).unwrap();
        assert!(manifest.contains(r#""RepoTags":[]"#), "{manifest}");
        assert_eq!(tar.read_file("repositories", 10).unwrap().unwrap(), b"{}");
    }

    #[test]
    fn writer_refuses_what_a_docker_archive_cannot_hold_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tar");
        let manifest = testdata(&format!("{PLAIN}/{PLAIN_MANIFEST}"));
        let config = testdata(&format!("{PLAIN}/{PLAIN_CONFIG}"));
        let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
            f(&mut m);
            serde_json::to_vec(&m).unwrap()
        };
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (
                mutate(&|m| {
                    m["layers"][1]["mediaType"] =
                        "application/vnd.oci.image.layer.v1.tar+gzip+encrypted".into()
                }),
                OCI_MANIFEST,
                "is encrypted",
            ),
            (
                mutate(&|m| m["layers"][0]["urls"] = serde_json::json!(["https://example.com/l"])),
                OCI_MANIFEST,
                "foreign layer",
            ),
            (
                mutate(&|m| m["layers"][2]["mediaType"] = "application/vnd.in-toto+json".into()),
                OCI_MANIFEST,
                "not a filesystem layer",
            ),
            (mutate(&|_| {}), OCI_INDEX, "not a single image manifest"),
            (
                // The config promises other content than the layers hold.
                {
                    let mut c: serde_json::Value = serde_json::from_slice(&config).unwrap();
                    c["rootfs"]["diff_ids"][2] = Digest::sha256(b"x").to_string().into();
                    let c = serde_json::to_vec(&c).unwrap();
                    let d = Digest::sha256(&c);
                    let m = mutate(&|m| {
                        m["config"]["digest"] = d.to_string().into();
                        m["config"]["size"] = c.len().into();
                    });
                    let mut out = c.clone();
                    out.push(b'\n');
                    out.extend_from_slice(&m);
                    out
                },
                OCI_MANIFEST,
                "decompresses to",
            ),
        ];
        for (blob, media_type, expect) in cases {
            let w = Box::new(DockerArchiveWriter::create(&target).unwrap());
            stage_plain(&w, "a:1");
            // The diff-id case carries its own config before the manifest.
            let manifest = match blob.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    w.put_blob(&blob[..at]).unwrap();
                    blob[at + 1..].to_vec()
                }
                None => blob,
            };
            let (digest, size) = w.put_blob(&manifest).unwrap();
            let index = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "manifests": [{"mediaType": media_type, "digest": digest.to_string(), "size": size}],
            }))
            .unwrap();
            let e = w.commit(&index, &[]).unwrap_err();
            assert!(matches!(e, StoreError::CannotStore { .. }), "{e}");
            assert!(
                e.to_string().contains(expect),
                "expected `{expect}` in: {e}"
            );
            assert_eq!(
                fs::read_dir(dir.path()).unwrap().count(),
                0,
                "a failed commit left files behind ({expect})"
            );
        }

        // A writer dropped without commit leaves nothing either.
        {
            let w = DockerArchiveWriter::create(&target).unwrap();
            stage_plain(&w, "a:1");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
