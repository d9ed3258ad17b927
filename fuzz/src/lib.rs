//! What the fuzz targets share: test keys compiled in from `testdata/`, an in-memory blob
//! store holding the small blobs of the committed fixture images, a scratch file for the
//! parsers that read files, and the invariants every target checks on errors.
//!
//! The keys are test keys (see `testdata/README.md`): with them the targets reach the code
//! behind a successful unwrap (options parsing, cipher parameters), not only the refusals.

use std::collections::HashMap;
use std::fmt::Display;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Mutex, OnceLock};

use layercrypt::digest::{Digest, VerifyingReader};
use layercrypt::format::json::JsonObject;
use layercrypt::format::{ENCRYPTED_SUFFIX, LayerType, classify_layer};
use layercrypt::image::{Descriptor, Image, Platform};
use layercrypt::keys::{Certificate, PrivateKey};
use layercrypt::keywrap::pgp::SecretKeyring;
use layercrypt::keywrap::{
    DescribeContext, Environment, KeyRing, MatchTarget, NamedCertificate, NamedKey,
    RecipientMatcher, Registry, describe_layer,
};
use layercrypt::plan::{self, JobWork, LayerAction, LayerSelector, Operation, Plan, Selection};
use layercrypt::store::{BlobSource, ImageRef, StoreError};

/// An error must say something: every refusal reaches a user as a message.
pub fn check_message(error: &impl Display) {
    assert!(
        !error.to_string().trim().is_empty(),
        "an error with an empty message"
    );
}

macro_rules! testdata {
    ($path:literal) => {
        (
            $path,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/", $path)) as &[u8],
        )
    };
}

/// Private keys for JWE and PKCS#7: those skopeo encrypted the fixtures for (`testdata/keys`
/// for `testdata/images/skopeo-*`, and the keys of the samples), one for every JWE curve.
const PRIVATE_KEYS: &[(&str, &[u8])] = &[
    testdata!("keys/rsa2048.pem"),
    testdata!("keys/ec256.pem"),
    testdata!("keys/ec384.pem"),
    testdata!("samples/small-multi/keys/rsa2048.pem"),
    testdata!("samples/small-multi/keys/ec256.pem"),
    testdata!("samples/small-multi/keys/ec384.pem"),
    testdata!("jwe/skopeo193-ec521.key.pem"),
    testdata!("samples/small-multi/keys/x509.key"),
    testdata!("keys/x509.key"),
];

/// Certificates that locate PKCS#7 entries for the keys above.
const CERTIFICATES: &[(&str, &[u8])] = &[
    testdata!("samples/small-multi/keys/x509.crt"),
    testdata!("keys/x509.crt"),
];

/// Unprotected OpenPGP secret keyrings: RSA (skopeo's messages), cv25519 and P-256 ECDH.
const PGP_KEYRINGS: &[(&str, &[u8])] = &[
    testdata!("samples/small-multi/keys/gpg-secring.gpg"),
    testdata!("pgp/alice.sec.gpg"),
    testdata!("pgp/carol.sec.gpg"),
    testdata!("pgp/dave.sec.gpg"),
];

/// The JWE and PKCS#7 private keys.
pub fn private_keys() -> Vec<NamedKey> {
    PRIVATE_KEYS
        .iter()
        .map(|(name, pem)| NamedKey {
            source: (*name).to_string(),
            key: PrivateKey::from_bytes(pem, None).expect("test key"),
        })
        .collect()
}

/// The PKCS#7 certificates.
pub fn certificates() -> Vec<NamedCertificate> {
    CERTIFICATES
        .iter()
        .map(|(name, pem)| NamedCertificate {
            source: (*name).to_string(),
            certificate: Certificate::from_bytes(pem).expect("test certificate"),
        })
        .collect()
}

/// Every test key, as `-k` would load them (never asking gpg).
pub fn key_ring() -> KeyRing {
    KeyRing {
        private_keys: private_keys(),
        certificates: certificates(),
        pgp_keyrings: PGP_KEYRINGS
            .iter()
            .map(|(name, data)| SecretKeyring::parse(data, name, None).expect("test keyring"))
            .collect(),
        ..KeyRing::default()
    }
}

/// Every scheme, configured as an empty environment configures it: JWE, OpenPGP (never
/// running gpg: the key rings above say `use_gpg: false`), PKCS#7, PKCS#11, no providers.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::new(&Environment::default()).expect("registry"))
}

/// Small blobs of the committed fixture images (indexes, manifests, configs), by digest, and
/// the blobs a target adds.
pub struct MemStore {
    extra: HashMap<Digest, Vec<u8>>,
    index: Vec<u8>,
}

/// The fixture blobs: every file of `testdata/images/*/blobs` and `testdata/samples/*/*/blobs`
/// under 64 KiB, read once.
fn fixture_blobs() -> &'static HashMap<Digest, Vec<u8>> {
    static BLOBS: OnceLock<HashMap<Digest, Vec<u8>>> = OnceLock::new();
    BLOBS.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata");
        let mut dirs = Vec::new();
        for parent in [root.join("images"), root.join("samples")] {
            for entry in std::fs::read_dir(&parent).expect("testdata").flatten() {
                let path = entry.path();
                dirs.push(path.join("blobs/sha256"));
                for sub in ["image", "plain"] {
                    dirs.push(path.join(sub).join("blobs/sha256"));
                }
            }
        }
        let mut blobs = HashMap::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if !meta.is_file() || meta.len() > 64 * 1024 {
                    continue;
                }
                let data = std::fs::read(entry.path()).expect("fixture blob");
                blobs.insert(Digest::sha256(&data), data);
            }
        }
        assert!(
            blobs.len() > 20,
            "fixture blobs not found in {}",
            root.display()
        );
        blobs
    })
}

impl MemStore {
    /// The fixture blobs, `extra` (under its own digest) and `index` as `index.json`.
    pub fn new(extra: &[&[u8]], index: &[u8]) -> MemStore {
        MemStore {
            extra: extra
                .iter()
                .map(|blob| (Digest::sha256(blob), blob.to_vec()))
                .collect(),
            index: index.to_vec(),
        }
    }

    fn get(&self, digest: &Digest) -> Option<&[u8]> {
        self.extra
            .get(digest)
            .or_else(|| fixture_blobs().get(digest))
            .map(Vec::as_slice)
    }
}

impl BlobSource for MemStore {
    fn name(&self) -> &str {
        "fuzz"
    }

    fn read_index(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.index.clone())
    }

    fn open_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + '_>, StoreError> {
        match self.get(digest) {
            Some(data) => Ok(Box::new(VerifyingReader::new(data, digest.clone(), size))),
            None => Err(StoreError::MissingBlob {
                store: self.name().to_string(),
                digest: digest.clone(),
            }),
        }
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.get(digest).is_some()
    }
}

/// One scratch file per process, rewritten for every input, for parsers that read a `File`.
/// Returns it positioned at the start, holding exactly `data`.
pub fn with_scratch_file<T>(data: &[u8], f: impl FnOnce(&File, &std::path::Path) -> T) -> T {
    static SCRATCH: OnceLock<Mutex<tempfile::NamedTempFile>> = OnceLock::new();
    let scratch = SCRATCH
        .get_or_init(|| Mutex::new(tempfile::NamedTempFile::new().expect("a temporary file")));
    let mut scratch = scratch.lock().unwrap_or_else(|p| p.into_inner());
    let file = scratch.as_file_mut();
    file.set_len(0).expect("truncate the scratch file");
    file.seek(SeekFrom::Start(0)).expect("seek");
    file.write_all(data).expect("write the scratch file");
    file.seek(SeekFrom::Start(0)).expect("seek");
    let path = scratch.path().to_path_buf();
    f(scratch.as_file(), &path)
}

/// The operations planned over every image a target loads: encrypt (for no recipient: the
/// planner needs none), and re-key removing Alice's OpenPGP key with every test key (the
/// planner unwraps each encrypted layer and edits its wrapped keys).
fn operations() -> &'static [Operation] {
    static OPERATIONS: OnceLock<Vec<Operation>> = OnceLock::new();
    OPERATIONS.get_or_init(|| {
        vec![
            Operation::Encrypt {
                recipients: Vec::new(),
            },
            Operation::Rekey {
                keys: key_ring(),
                add: Vec::new(),
                remove: vec![RecipientMatcher {
                    spec: "3631BE422BDA5120".into(),
                    target: MatchTarget::KeyId("3631BE422BDA5120".into()),
                }],
                set: Vec::new(),
                rotate: false,
            },
        ]
    })
}

/// The keys layers are opened with.
fn layer_keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(key_ring)
}

/// What the planner, `inspect` and `decrypt` do with the layers of loaded images, checked:
/// every layer is classified consistently, its annotations read and described, an encrypted
/// one opened with the test keys (or refused with a message), its descriptor rewritten without
/// loss; plans are built for every operation and for a selection of one platform and the top
/// layer, and a plan's jobs are consistent with its layers.
pub fn check_images(images: &[Image]) {
    let registry = registry();
    for image in images {
        for manifest in image.root.manifests() {
            assert!(!manifest.platform_name().is_empty());
            for layer in &manifest.layers {
                check_layer(registry, layer);
            }
        }
    }
    // A base image made of the hostile graph's own manifests, minus each one's top layer, so
    // that `--base` matching sees hostile layers, platforms and annotations.
    let base = plan::base::Base {
        name: "fuzz-base".into(),
        by_digest: false,
        manifests: images
            .iter()
            .flat_map(|i| i.root.manifests())
            .map(|m| plan::base::BaseManifest {
                image: "fuzz-base:1".into(),
                digest: m.desc.digest.clone(),
                parents: Vec::new(),
                platform: m.platform.clone(),
                layers: m
                    .layers
                    .iter()
                    .take(m.layers.len().saturating_sub(1))
                    .map(|l| l.digest.clone())
                    .collect(),
                diff_ids: None,
            })
            .collect(),
    };
    let selections = [
        Selection::default(),
        Selection {
            platforms: vec![Platform::parse("linux/amd64").expect("platform")],
            layers: vec![LayerSelector::Index(-1)],
            base: None,
        },
        Selection {
            base: Some(std::sync::Arc::new(base)),
            ..Selection::default()
        },
    ];
    // An output that holds anything, and one that holds one plain platform per image (a
    // docker-archive), so that the plan's capability checks see hostile graphs too.
    let outputs = ["oci:/fuzz/out", "docker-archive:/fuzz/out.tar"].map(|name| {
        let reference = ImageRef::parse(name).expect("reference");
        plan::Output {
            name: name.to_string(),
            reference: None,
            in_place: false,
            other_store: true,
            capabilities: reference.capabilities(),
        }
    });
    let input = plan::Input {
        name: "fuzz",
        capabilities: ImageRef::parse("oci:/fuzz/in")
            .expect("reference")
            .capabilities(),
    };
    for operation in operations() {
        for selection in &selections {
            for output in &outputs {
                match plan::build(
                    &input,
                    images.to_vec(),
                    selection,
                    operation,
                    registry,
                    output,
                ) {
                    Ok(plan) => check_plan(&plan),
                    Err(e) => check_message(&e),
                }
            }
        }
    }
}

fn check_layer(registry: &Registry, layer: &Descriptor) {
    let media_type = &layer.media_type;
    match classify_layer(media_type) {
        LayerType::Plain { encrypted } => match classify_layer(&encrypted) {
            LayerType::Encrypted { plain } => {
                assert_eq!(classify_layer(&plain), LayerType::Plain { encrypted });
            }
            other => panic!("{media_type} encrypts to {encrypted}, which is {other:?}"),
        },
        LayerType::Encrypted { plain } => {
            assert_eq!(format!("{plain}{ENCRYPTED_SUFFIX}"), *media_type);
        }
        LayerType::Foreign | LayerType::Other => {}
    }
    // Descriptor::parse checked that annotations are a map of strings.
    let annotations = layer
        .annotations()
        .expect("annotations of a parsed descriptor");
    for (_, described) in describe_layer(registry, &annotations, &DescribeContext::default()) {
        match described {
            Ok(recipients) => recipients
                .iter()
                .for_each(|r| assert!(!r.to_string().is_empty())),
            Err(e) => check_message(&e),
        }
    }
    if matches!(classify_layer(media_type), LayerType::Encrypted { .. }) {
        match plan::open_layer(registry, layer, layer_keys()) {
            Ok((params, private, unwrapped)) => {
                assert_eq!(&params.secrets.key().as_bytes()[..], &private.symkey[..]);
                assert!(!unwrapped.scheme.is_empty());
            }
            Err(e) => check_message(&e),
        }
    }
    // Rewriting the annotations as they are loses nothing.
    let mut rewritten = layer.clone();
    rewritten.set_annotations(&annotations);
    let json =
        JsonObject::parse(&rewritten.json.to_go_bytes()).expect("a rewritten descriptor parses");
    let again = Descriptor::parse(json, "rewritten").expect("a rewritten descriptor is valid");
    assert_eq!(again.digest, layer.digest);
    assert_eq!(again.size, layer.size);
    assert_eq!(again.media_type, layer.media_type);
    assert_eq!(
        again.annotations().expect("annotations").to_go_bytes(),
        annotations.to_go_bytes()
    );
}

fn check_plan(plan: &Plan) {
    for image in &plan.images {
        for manifest in &image.manifests {
            for layer in &manifest.layers {
                match layer.action {
                    LayerAction::Encrypt(n) => match &plan.jobs[n].work {
                        JobWork::Encrypt { media_type } => assert!(matches!(
                            classify_layer(media_type),
                            LayerType::Encrypted { .. }
                        )),
                        other => panic!("an encrypt action with job {other:?}"),
                    },
                    LayerAction::Decrypt(n) | LayerAction::Rewrap(n) | LayerAction::Rotate(n) => {
                        assert!(n < plan.jobs.len());
                    }
                    LayerAction::Keep(reason) => assert!(!reason.to_string().is_empty()),
                }
            }
        }
    }
}
