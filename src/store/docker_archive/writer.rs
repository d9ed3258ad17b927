//! Writing a `docker save` archive, as skopeo writes one: decompressed `<diffid>.tar` layers,
//! `<config>.json`, legacy `<id>/` directories (see `legacy.rs`), `manifest.json` and
//! `repositories`.
//!
//! [`DockerArchiveWriter`] stages blobs in an OCI layout beside the target; at commit it first
//! checks every image (one platform each, plain filesystem layers only, configs whose diff ids
//! match the layers), and only then writes the archive into a temporary file renamed over the
//! target. It must never publish a partial archive, and never write what a Docker archive
//! cannot carry: an encrypted layer, a foreign layer or a multi-platform index is refused
//! before the first byte is written, and a writer dropped without commit leaves nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::legacy::legacy_layers;
use super::{CONTAINERD_IMAGE_NAME, ImageConfig, MANIFEST_FILE, REPOSITORIES_FILE, decoder};
use crate::digest::{Algorithm, Digest, HashingReader, VerifyError};
use crate::format::descriptor::{Descriptor, TopIndex};
use crate::format::docker_reference::split_reference;
use crate::format::json::{JsonObject, to_go_vec};
use crate::format::media_type::{
    DOCKER_MANIFEST, ENCRYPTED_SUFFIX, OCI_MANIFEST, is_foreign, is_non_distributable,
    layer_compression,
};
use crate::store::direct::AlignedBuf;
use crate::store::oci::OciLayoutWriter;
use crate::store::tar::{TarWriter, parent_dir};
use crate::store::temp::{self, TempDir};
use crate::store::{
    BlobSink, BlobSource, CommitReport, MAX_MANIFEST_SIZE, StoreError, StoreWriter,
};

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
        tar: &mut TarWriter,
        layer: &Descriptor,
        diff_id: &Digest,
        what: &str,
    ) -> Result<(), StoreError> {
        let kind = layer_compression(&layer.media_type).expect("checked while planning");
        let mut blob = self.staging.open_blob(&layer.digest, layer.size)?;
        let name = format!("{}.tar", diff_id.hex());
        let (written, actual, failed) = {
            // Read the staged blob in large pieces: the decoders' own buffers are small.
            let raw = io::BufReader::with_capacity(AlignedBuf::CAPACITY, &mut blob);
            let mut plain = HashingReader::new(
                decoder(kind, raw).map_err(|e| self.cannot(format!("{what}: {e}")))?,
                diff_id.algorithm(),
            );
            let written = tar.add_file_unsized(&name, &mut plain);
            let failed = plain.take_error();
            (written, plain.finish(), failed)
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
        if actual != *diff_id {
            return Err(self.cannot(format!(
                "{what} decompresses to {actual}, but its config's diff_id is {diff_id}"
            )));
        }
        Ok(())
    }
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

        let mut tar = TarWriter::create(&self.target)?;
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
