//! Deterministic OCI image-layout generator for tests, benchmarks and `examples/mkimage.rs`.
//!
//! [`write_image`] and [`write_multiarch`] write an [OCI image layout] (`oci-layout`,
//! `index.json`, `blobs/sha256/<hex>`) whose every byte is a function of the spec: layer tars
//! hold a few regular files with pseudo-random (or compressible text) content derived from a
//! seed, with fixed mtimes, owners and modes, and all JSON is written the way Go's
//! `encoding/json` writes the `opencontainers/image-spec` structs (compact, struct field order,
//! sorted annotation keys, `<`, `>` and `&` escaped as `\u003c`, `\u003e`, `\u0026`). So
//! `skopeo copy` of a generated image leaves its manifest byte for byte unchanged, and
//! decrypting an encrypted copy must give back exactly the plain manifest.
//!
//! Constraints:
//! * Layers are streamed (content generator -> tar -> compressor -> hashing file writer) and the
//!   diff_id is hashed on the way, so memory stays bounded (a few MiB, mostly the zstd context)
//!   however large a layer is. Content is generated at several GB/s, so a layer costs what the
//!   compressor, SHA-256 and the disk cost: for 1 GiB of random content about 1 s with `None`,
//!   2 s with `Zstd`, 6 s with `GzipFast` and 25 s with `Gzip` (release build).
//! * Reproducible byte for byte for the same spec and the same versions of `tar`, `flate2` and
//!   `zstd`. Compressed bytes may change when a compression library is upgraded; tar contents,
//!   diff_ids and JSON layout do not.
//! * Blobs are written to a temporary file in `blobs/sha256/` and renamed into place, so an
//!   interrupted run leaves no blob with a wrong name. Concurrent writers to the *same* layout may
//!   lose each other's `index.json` entries; give each test its own directory.
//! * Nothing here panics on bad input: errors are `io::Error`s naming what was wrong.
//!
//! ```ignore
//! use common::mkimage::{Compression, ImageSpec, LayerSpec, write_image};
//! let mut image = ImageSpec::new("linux", "amd64", 7);
//! image.layers.push(LayerSpec::new(64 * 1024, Compression::Gzip));
//! let written = write_image(dir, "v1", &image)?;
//! println!("{}", written.tagged.digest);
//! ```
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

// Included by several targets (tests, benches, an example), each of which uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// `mediaType` of an OCI image manifest.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `mediaType` of an OCI image index (`index.json` and multi-platform index blobs).
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `mediaType` of an OCI image config.
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Annotation on `index.json` entries that carries the reference (tag) name.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// `created` timestamp written into every config and history entry.
pub const CREATED: &str = "2024-01-01T00:00:00Z";
/// Modification time (seconds since the epoch, = [`CREATED`]) of every tar entry.
pub const MTIME: u64 = 1_704_067_200;

/// How a layer blob is compressed; decides its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Plain tar: `application/vnd.oci.image.layer.v1.tar`.
    None,
    /// gzip at the default level (6): `…tar+gzip`.
    Gzip,
    /// gzip at level 1, for big layers where speed matters: `…tar+gzip`.
    GzipFast,
    /// zstd at level 3 (the zstd default): `…tar+zstd`.
    Zstd,
}

impl Compression {
    /// Every variant, in declaration order.
    pub const ALL: [Compression; 4] = [
        Compression::None,
        Compression::Gzip,
        Compression::GzipFast,
        Compression::Zstd,
    ];

    /// The OCI layer media type of a blob compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip | Compression::GzipFast => {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            }
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The command-line name: `none`, `gzip`, `gzip-fast` or `zstd`.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::GzipFast => "gzip-fast",
            Compression::Zstd => "zstd",
        }
    }

    /// Parses a name as returned by [`Compression::name`].
    pub fn from_name(name: &str) -> Option<Compression> {
        Compression::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// One layer: how much file content its tar holds and how the tar is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// Total bytes of regular-file content in the tar (split evenly over `files`; tar headers,
    /// padding and directory entries come on top).
    pub size: u64,
    /// Compression of the blob.
    pub compression: Compression,
    /// `false`: uniformly pseudo-random bytes (incompressible). `true`: lines of words from a
    /// small vocabulary (compresses roughly 3:1 with gzip).
    pub compressible: bool,
    /// Number of regular files; must be at least 1 when `size > 0`.
    pub files: usize,
    /// Annotations on the layer descriptor in the manifest (written with sorted keys; for a
    /// repeated key the last value wins).
    pub annotations: Vec<(String, String)>,
    /// Content seed. `None` (the default): derived from the image seed and the layer's position,
    /// so images with the same seed share their bottom layers when those specs are equal.
    /// `Some(s)`: the tar depends only on `s`, `size`, `files` and `compressible`, which is how
    /// two images (for example two platforms of one index) share a layer blob.
    pub seed: Option<u64>,
}

impl LayerSpec {
    /// A layer of `size` bytes of incompressible content in 3 files, no annotations, seed
    /// derived from the image.
    pub fn new(size: u64, compression: Compression) -> LayerSpec {
        LayerSpec {
            size,
            compression,
            compressible: false,
            files: 3,
            annotations: Vec::new(),
            seed: None,
        }
    }
}

/// One single-platform image: a config and a manifest referencing `layers` (bottom first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// `os` of the config and platform, e.g. `linux`.
    pub os: String,
    /// `architecture` of the config and platform, e.g. `amd64`.
    pub arch: String,
    /// CPU variant, e.g. `v8` for `linux/arm64/v8`.
    pub variant: Option<String>,
    /// Layers, bottom-most first. May be empty.
    pub layers: Vec<LayerSpec>,
    /// Seed for layer contents (see [`LayerSpec::seed`]); also recorded as a config label.
    pub seed: u64,
    /// Annotations of the manifest itself (sorted keys; last value wins).
    pub manifest_annotations: Vec<(String, String)>,
}

impl ImageSpec {
    /// An image for `os`/`arch` with no variant, no layers and no annotations.
    pub fn new(os: &str, arch: &str, seed: u64) -> ImageSpec {
        ImageSpec {
            os: os.to_owned(),
            arch: arch.to_owned(),
            variant: None,
            layers: Vec::new(),
            seed,
            manifest_annotations: Vec::new(),
        }
    }

    /// An image for a platform string `OS/ARCH[/VARIANT]` (as `docker --platform` takes it);
    /// `None` if the string does not have two or three non-empty parts.
    pub fn for_platform(platform: &str, seed: u64) -> Option<ImageSpec> {
        let parts: Vec<&str> = platform.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut image = ImageSpec::new(parts[0], parts[1], seed);
        image.variant = parts.get(2).map(|v| (*v).to_owned());
        Some(image)
    }

    /// `OS/ARCH[/VARIANT]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{}", self.os, self.arch, v),
            None => format!("{}/{}", self.os, self.arch),
        }
    }
}

/// A content descriptor as written in a manifest or index (without annotations or platform).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// `mediaType`.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size of the blob in bytes.
    pub size: u64,
}

impl Descriptor {
    /// Path of this blob inside the layout at `dir`.
    pub fn blob_path(&self, dir: &Path) -> PathBuf {
        let hex = self.digest.strip_prefix("sha256:").unwrap_or(&self.digest);
        dir.join("blobs").join("sha256").join(hex)
    }
}

/// What was written for one [`ImageSpec`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenImage {
    /// `OS/ARCH[/VARIANT]`.
    pub platform: String,
    /// The manifest blob.
    pub manifest: Descriptor,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom-most first.
    pub layers: Vec<Descriptor>,
    /// `sha256:<hex>` of each uncompressed layer tar (the config's `rootfs.diff_ids`).
    pub diff_ids: Vec<String>,
}

/// What [`write_image`] or [`write_multiarch`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The descriptor that `index.json` now holds under the reference name: the manifest for
    /// [`write_image`], the image index blob for [`write_multiarch`].
    pub tagged: Descriptor,
    /// Digest of the image index blob ([`write_multiarch`] only).
    pub index_digest: Option<String>,
    /// One entry per image, in the order given.
    pub images: Vec<WrittenImage>,
}

impl Written {
    /// Manifest digests, one per image.
    pub fn manifest_digests(&self) -> Vec<String> {
        self.images
            .iter()
            .map(|i| i.manifest.digest.clone())
            .collect()
    }

    /// Layer digests per image, bottom-most first.
    pub fn layer_digests(&self) -> Vec<Vec<String>> {
        self.images
            .iter()
            .map(|i| i.layers.iter().map(|l| l.digest.clone()).collect())
            .collect()
    }
}

/// Writes a layout at `dir` holding `image` under the reference `ref_name`.
///
/// `dir` is created if missing. If it already is a layout (has `oci-layout`), blobs are added
/// and the `index.json` entry named `ref_name` is replaced in place (or appended); other entries
/// are kept verbatim. A non-empty directory that is not a layout is refused.
pub fn write_image(dir: &Path, ref_name: &str, image: &ImageSpec) -> io::Result<Written> {
    check_ref_name(ref_name)?;
    let blobs = prepare_layout(dir)?;
    let written = write_one_image(&blobs, image)?;
    let tagged = written.manifest.clone();
    set_index_entry(dir, ref_name, &tagged)?;
    Ok(Written {
        tagged,
        index_digest: None,
        images: vec![written],
    })
}

/// Writes a multi-platform image: one manifest per spec and an OCI image index blob listing them
/// (each descriptor with its `platform`), tagged `ref_name` in `index.json`.
///
/// Layers with equal content (see [`LayerSpec::seed`]) are stored once and shared. Layout
/// handling is as in [`write_image`]. At least one image is required.
pub fn write_multiarch(dir: &Path, ref_name: &str, images: &[ImageSpec]) -> io::Result<Written> {
    check_ref_name(ref_name)?;
    if images.is_empty() {
        return Err(invalid("write_multiarch needs at least one image"));
    }
    let blobs = prepare_layout(dir)?;
    let mut written = Vec::with_capacity(images.len());
    let mut entries = Vec::with_capacity(images.len());
    for image in images {
        let w = write_one_image(&blobs, image)?;
        let mut platform = Map::new();
        platform.insert("architecture".into(), image.arch.clone().into());
        platform.insert("os".into(), image.os.clone().into());
        if let Some(variant) = &image.variant {
            platform.insert("variant".into(), variant.clone().into());
        }
        let mut entry = descriptor_json(&w.manifest, &[]);
        entry.insert("platform".into(), Value::Object(platform));
        entries.push(Value::Object(entry));
        written.push(w);
    }
    let mut index = Map::new();
    index.insert("schemaVersion".into(), 2.into());
    index.insert("mediaType".into(), MEDIA_TYPE_INDEX.into());
    index.insert("manifests".into(), Value::Array(entries));
    let tagged = write_blob(&blobs, MEDIA_TYPE_INDEX, &go_json(&Value::Object(index)))?;
    set_index_entry(dir, ref_name, &tagged)?;
    Ok(Written {
        index_digest: Some(tagged.digest.clone()),
        tagged,
        images: written,
    })
}

/// Serializes a JSON value exactly as Go's `json.Marshal` does: compact, keys in the map's
/// order, `<`, `>`, `&`, U+2028 and U+2029 escaped, control characters other than `\n`, `\r`,
/// `\t` as `\u00xx`.
pub fn go_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_go_json(&mut out, value);
    out
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

// ---------------------------------------------------------------------------------------------
// Layout handling

fn check_ref_name(ref_name: &str) -> io::Result<()> {
    if ref_name.is_empty() {
        return Err(invalid("reference name is empty"));
    }
    Ok(())
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

fn with_path(err: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}

/// Makes `dir` a layout if it is not one yet; returns `dir/blobs/sha256`.
fn prepare_layout(dir: &Path) -> io::Result<PathBuf> {
    let marker = dir.join("oci-layout");
    if !marker.exists() {
        if dir.exists() {
            let mut entries = fs::read_dir(dir).map_err(|e| with_path(e, "reading", dir))?;
            if entries.next().is_some() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is not empty and not an OCI layout (no oci-layout file)",
                        dir.display()
                    ),
                ));
            }
        }
        fs::create_dir_all(dir).map_err(|e| with_path(e, "creating", dir))?;
        write_file_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    }
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| with_path(e, "creating", &blobs))?;
    Ok(blobs)
}

/// Replaces (in place) or appends the `index.json` entry named `ref_name`.
fn set_index_entry(dir: &Path, ref_name: &str, desc: &Descriptor) -> io::Result<()> {
    let path = dir.join("index.json");
    let mut index = match fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            Ok(_) | Err(_) => {
                return Err(invalid(format!("{} is not a JSON object", path.display())));
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut map = Map::new();
            map.insert("schemaVersion".into(), 2.into());
            map.insert("mediaType".into(), MEDIA_TYPE_INDEX.into());
            map.insert("manifests".into(), Value::Array(Vec::new()));
            map
        }
        Err(e) => return Err(with_path(e, "reading", &path)),
    };
    let entry = Value::Object(descriptor_json(
        desc,
        &[(ANNOTATION_REF_NAME.to_owned(), ref_name.to_owned())],
    ));
    let manifests = index
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(manifests) = manifests else {
        return Err(invalid(format!(
            "{}: \"manifests\" is not an array",
            path.display()
        )));
    };
    let existing = manifests.iter().position(|m| {
        m.pointer("/annotations/org.opencontainers.image.ref.name")
            .and_then(Value::as_str)
            == Some(ref_name)
    });
    match existing {
        Some(i) => manifests[i] = entry,
        None => manifests.push(entry),
    }
    write_file_atomic(&path, &go_json(&Value::Object(index)))
}

/// `{"mediaType","digest","size"[,"annotations"]}` in Go field order.
fn descriptor_json(desc: &Descriptor, annotations: &[(String, String)]) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("mediaType".into(), desc.media_type.clone().into());
    map.insert("digest".into(), desc.digest.clone().into());
    map.insert("size".into(), desc.size.into());
    if !annotations.is_empty() {
        map.insert("annotations".into(), annotations_json(annotations));
    }
    map
}

/// Go marshals `map[string]string` with sorted keys.
fn annotations_json(annotations: &[(String, String)]) -> Value {
    let sorted: BTreeMap<&str, &str> = annotations
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Images

fn write_one_image(blobs: &Path, image: &ImageSpec) -> io::Result<WrittenImage> {
    if image.os.is_empty() || image.arch.is_empty() {
        return Err(invalid("image os and arch must not be empty"));
    }
    let mut layers = Vec::with_capacity(image.layers.len());
    let mut diff_ids = Vec::with_capacity(image.layers.len());
    for (index, spec) in image.layers.iter().enumerate() {
        let seed = spec.seed.unwrap_or_else(|| mix(image.seed, index as u64));
        let (desc, diff_id) = write_layer(blobs, spec, seed).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("layer {index} of {}: {e}", image.platform()),
            )
        })?;
        layers.push(desc);
        diff_ids.push(diff_id);
    }

    let config = write_blob(
        blobs,
        MEDIA_TYPE_CONFIG,
        &go_json(&config_json(image, &diff_ids)),
    )?;

    let mut manifest = Map::new();
    manifest.insert("schemaVersion".into(), 2.into());
    manifest.insert("mediaType".into(), MEDIA_TYPE_MANIFEST.into());
    manifest.insert(
        "config".into(),
        Value::Object(descriptor_json(&config, &[])),
    );
    manifest.insert(
        "layers".into(),
        Value::Array(
            layers
                .iter()
                .zip(&image.layers)
                .map(|(desc, spec)| Value::Object(descriptor_json(desc, &spec.annotations)))
                .collect(),
        ),
    );
    if !image.manifest_annotations.is_empty() {
        manifest.insert(
            "annotations".into(),
            annotations_json(&image.manifest_annotations),
        );
    }
    let manifest = write_blob(
        blobs,
        MEDIA_TYPE_MANIFEST,
        &go_json(&Value::Object(manifest)),
    )?;

    Ok(WrittenImage {
        platform: image.platform(),
        manifest,
        config,
        layers,
        diff_ids,
    })
}

/// An OCI image config, fields in the order of image-spec v1.1's Go `Image` struct.
fn config_json(image: &ImageSpec, diff_ids: &[String]) -> Value {
    let mut labels = Map::new();
    labels.insert("org.opencontainers.image.title".into(), "mkimage".into());
    let mut exec = Map::new();
    exec.insert(
        "Env".into(),
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"].into(),
    );
    exec.insert("Cmd".into(), vec!["/bin/sh"].into());
    exec.insert("WorkingDir".into(), "/".into());
    exec.insert("Labels".into(), Value::Object(labels));

    let mut rootfs = Map::new();
    rootfs.insert("type".into(), "layers".into());
    rootfs.insert("diff_ids".into(), diff_ids.to_vec().into());

    let history: Vec<Value> = image
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut h = Map::new();
            h.insert("created".into(), CREATED.into());
            h.insert(
                "created_by".into(),
                format!(
                    "mkimage seed={} layer={i} size={} files={} compression={}{}",
                    image.seed,
                    l.size,
                    l.files,
                    l.compression.name(),
                    if l.compressible { " compressible" } else { "" }
                )
                .into(),
            );
            Value::Object(h)
        })
        .collect();

    let mut config = Map::new();
    config.insert("created".into(), CREATED.into());
    config.insert("architecture".into(), image.arch.clone().into());
    config.insert("os".into(), image.os.clone().into());
    if let Some(variant) = &image.variant {
        config.insert("variant".into(), variant.clone().into());
    }
    config.insert("config".into(), Value::Object(exec));
    config.insert("rootfs".into(), Value::Object(rootfs));
    if !history.is_empty() {
        config.insert("history".into(), Value::Array(history));
    }
    Value::Object(config)
}

// ---------------------------------------------------------------------------------------------
// Blobs

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written in `blobs/sha256/` under a temporary name, hashed as it goes.
struct BlobFile {
    dir: PathBuf,
    tmp: PathBuf,
    out: Hashing<BufWriter<File>>,
}

impl BlobFile {
    fn create(blobs: &Path) -> io::Result<BlobFile> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = blobs.join(format!(".mkimage-{}-{n}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| with_path(e, "creating", &tmp))?;
        Ok(BlobFile {
            dir: blobs.to_path_buf(),
            tmp,
            out: Hashing::new(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    /// Flushes, renames the file to its digest and returns `(sha256:<hex>, size)`.
    fn commit(self) -> io::Result<(String, u64)> {
        let (writer, hex, size) = self.out.finish();
        let result = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|_file| fs::rename(&self.tmp, self.dir.join(&hex)));
        if let Err(e) = result {
            let _ = fs::remove_file(&self.tmp);
            return Err(with_path(e, "writing blob", &self.tmp));
        }
        Ok((format!("sha256:{hex}"), size))
    }
}

fn write_blob(blobs: &Path, media_type: &str, bytes: &[u8]) -> io::Result<Descriptor> {
    let mut file = BlobFile::create(blobs)?;
    file.out.write_all(bytes)?;
    let (digest, size) = file.commit()?;
    Ok(Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
    })
}

/// A writer that hashes (SHA-256, unless disabled) and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Option<Sha256>,
    count: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Some(Sha256::new()),
            count: 0,
        }
    }

    /// Counts but does not hash (`finish` then returns an empty digest).
    fn counting_only(inner: W) -> Self {
        Hashing {
            inner,
            hasher: None,
            count: 0,
        }
    }

    /// Returns the inner writer, the hex digest and the byte count.
    fn finish(self) -> (W, String, u64) {
        let hex = self
            .hasher
            .map(|h| hex::encode(h.finalize()))
            .unwrap_or_default();
        (self.inner, hex, self.count)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The compressor stage of the layer pipeline.
enum Compressor<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    fn new(compression: Compression, inner: W) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Compressor::None(inner),
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(6),
            )),
            Compression::GzipFast => Compressor::Gzip(flate2::write::GzEncoder::new(
                inner,
                flate2::Compression::new(1),
            )),
            Compression::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(inner, 3)?),
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(e) => e.finish(),
            Compressor::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(e) => e.write(buf),
            Compressor::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(e) => e.flush(),
            Compressor::Zstd(e) => e.flush(),
        }
    }
}

/// Streams one layer into `blobs`; returns its descriptor and diff_id.
fn write_layer(blobs: &Path, spec: &LayerSpec, seed: u64) -> io::Result<(Descriptor, String)> {
    if spec.size > 0 && spec.files == 0 {
        return Err(invalid(format!(
            "{} bytes of content need at least one file",
            spec.size
        )));
    }
    let file = BlobFile::create(blobs)?;
    let BlobFile { dir, tmp, out } = file;
    // For an uncompressed layer the blob *is* the tar: hash it once.
    let hash_tar = spec.compression != Compression::None;
    let compressor = match Compressor::new(spec.compression, out) {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let mut tar = if hash_tar {
        Hashing::new(compressor)
    } else {
        Hashing::counting_only(compressor)
    };
    let result = write_tar(&mut tar, spec, seed);
    let (compressor, tar_hex, _) = tar.finish();
    let out = match result.and_then(|()| compressor.finish()) {
        Ok(out) => out,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let (digest, size) = BlobFile { dir, tmp, out }.commit()?;
    let diff_id = if hash_tar {
        format!("sha256:{tar_hex}")
    } else {
        digest.clone()
    };
    Ok((
        Descriptor {
            media_type: spec.compression.media_type().to_owned(),
            digest,
            size,
        },
        diff_id,
    ))
}

/// Writes the tar: directory `data/` and `data/<seed>/`, then `files` regular files.
fn write_tar(out: &mut impl Write, spec: &LayerSpec, seed: u64) -> io::Result<()> {
    let top = format!("data/{seed:016x}");
    write_tar_header(out, "data/", tar::EntryType::Directory, 0o755, 0)?;
    write_tar_header(out, &format!("{top}/"), tar::EntryType::Directory, 0o755, 0)?;
    let files = spec.files as u64;
    let mut content = Content::new(seed, spec.compressible);
    let mut buf = vec![0u8; 64 * 1024];
    for k in 0..files {
        let len = spec.size / files + u64::from(k < spec.size % files);
        let ext = if spec.compressible { "txt" } else { "bin" };
        write_tar_header(
            out,
            &format!("{top}/file-{k:04}.{ext}"),
            tar::EntryType::Regular,
            0o644,
            len,
        )?;
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            content.fill(&mut buf[..n]);
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        let pad = (512 - len % 512) % 512;
        out.write_all(&[0u8; 512][..pad as usize])?;
    }
    // End of archive: two zero blocks, as Go's archive/tar and the tar crate write.
    out.write_all(&[0u8; 1024])
}

fn write_tar_header(
    out: &mut impl Write,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    size: u64,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path)?;
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(MTIME);
    header.set_size(size);
    header.set_cksum();
    out.write_all(header.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Deterministic content

/// SplitMix64 finalizer of `seed` combined with `n`: derives independent seeds.
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** seeded via SplitMix64: fast, fixed, and good enough to defeat compressors.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng([mix(seed, 0), mix(seed, 1), mix(seed, 2), mix(seed, 3)])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

const WORDS: [&str; 32] = [
    "layer",
    "image",
    "blob",
    "digest",
    "manifest",
    "index",
    "config",
    "platform",
    "encrypt",
    "decrypt",
    "recipient",
    "key",
    "wrap",
    "cipher",
    "stream",
    "tar",
    "gzip",
    "zstd",
    "oci",
    "annotation",
    "media",
    "type",
    "sha256",
    "size",
    "the",
    "of",
    "and",
    "a",
    "to",
    "in",
    "is",
    "with",
];

/// The content stream of one layer's files (continuous across files).
struct Content {
    rng: Rng,
    compressible: bool,
    /// Generated text not yet handed out (compressible mode).
    line: Vec<u8>,
    pos: usize,
}

impl Content {
    fn new(seed: u64, compressible: bool) -> Content {
        Content {
            rng: Rng::new(seed),
            compressible,
            line: Vec::with_capacity(256),
            pos: 0,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        if !self.compressible {
            let mut chunks = buf.chunks_exact_mut(8);
            for chunk in &mut chunks {
                chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
            }
            let rest = chunks.into_remainder();
            let last = self.rng.next_u64().to_le_bytes();
            rest.copy_from_slice(&last[..rest.len()]);
            return;
        }
        let mut filled = 0;
        while filled < buf.len() {
            if self.pos == self.line.len() {
                self.next_line();
            }
            let n = (self.line.len() - self.pos).min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&self.line[self.pos..self.pos + n]);
            self.pos += n;
            filled += n;
        }
    }

    /// A line of 6 to 13 words and a line number, so it compresses well but not absurdly well.
    fn next_line(&mut self) {
        self.line.clear();
        self.pos = 0;
        let r = self.rng.next_u64();
        let words = 6 + (r % 8) as usize;
        let _ = write!(self.line, "{:5}:", (r >> 32) % 100_000);
        let mut bits = self.rng.next_u64();
        for _ in 0..words {
            self.line.push(b' ');
            self.line
                .extend_from_slice(WORDS[(bits & 31) as usize].as_bytes());
            bits >>= 5;
        }
        self.line.push(b'\n');
    }
}

// ---------------------------------------------------------------------------------------------
// Go-compatible JSON

fn write_go_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_go_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_json(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_string(out, key);
                out.push(b':');
                write_go_json(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Go `encoding/json` string escaping (HTML-safe, as `json.Marshal` does by default).
fn write_go_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                let b = c as u32 as u8;
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("mkimage-{}-{n}.tmp", std::process::id()));
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            with_path(e, "writing", path)
        })
}
