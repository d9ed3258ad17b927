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
//!
//! This file is the reader (open, synthesis, the Docker 25 OCI view, [`BlobSource`]); the
//! writer is in `writer.rs`, the legacy layer ids it writes in `legacy.rs`, and the Docker
//! reference grammar both use in `reference.rs`.

mod legacy;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::value::RawValue;

pub use crate::format::docker_reference::ReferenceError;
pub(crate) use crate::format::docker_reference::normalize_reference;
pub use writer::DockerArchiveWriter;

use super::tar::{Compression, Tarball, normalize_name};
use super::{BlobSource, MAX_INDEX_SIZE, MAX_MANIFEST_SIZE, StoreError};
use crate::digest::{Algorithm, Digest, Hasher, HashingReader, VerifyingReader};
use crate::format::REF_NAME_ANNOTATION;
use crate::format::descriptor::{Descriptor, TopIndex};
use crate::format::json::JsonObject;
use crate::format::media_type::{
    DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_INDEX, OCI_LAYER_ZSTD,
    OCI_MANIFEST, is_foreign,
};

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
            size: raw.count(),
            digest: raw.finish(),
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
