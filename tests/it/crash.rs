//! What a run that cannot finish leaves behind (issue 7).
//!
//! * **Killed runs.** The real binary is killed with SIGKILL at many points while it rewrites
//!   an image in place: `encrypt`, `decrypt`, `rekey --add`, `rekey --rotate --set`, and an
//!   `encrypt` that rewrites an `oci-archive`. Some kills are timed, at fractions of an uncut
//!   run's duration, so they land while layers stream, wherever the machine's speed puts them;
//!   the others are exact: strace delivers the SIGKILL as the run is about to rename the new
//!   `index.json` (or archive) into place, to publish the first or the last new blob (when
//!   they are known in advance: decryption), to remove the first or the last blob that only
//!   the old image used, or (an archive) to remove its staging directory once the new archive
//!   is in place. After every kill the layout is valid (every blob `index.json` reaches is
//!   there with its size and digest, hashed here) or the archive a valid tar of such a layout,
//!   holding the old image or the new one; the same command run again succeeds and leaves
//!   exactly the new image: no temporary file, no pending list, no blob the index does not
//!   reach.
//! * **A full disk**: a real ENOSPC, from a small tmpfs. Exit status 2, an `error:` that says
//!   so, the input as it was, and nothing half-written.
//! * **Two runs at once** on one layout: each succeeds or is refused with the lock message,
//!   and the layout is valid and decrypts.
//!
//! Needs strace (`scripts/deps.sh --test`) and root, or CAP_SYS_ADMIN, to mount a tmpfs;
//! without them the tests fail, they never skip. The debug binary streams layers far slower
//! than a release build, so layers are small (`LAYERCRYPT_CRASH_LAYER_MIB`, default 4, makes
//! them bigger, for example with `cargo test --release --test it crash::`).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use common::mkimage::{self, Compression, ImageSpec, LayerSpec};
use common::{key, snapshot};

/// Layers of the image the crash tests rewrite.
const LAYERS: usize = 4;
/// Fractions of an uncut run's duration at which the timed kills land.
const TIMED: [f64; 4] = [0.15, 0.4, 0.65, 0.9];
/// The message of a run refused because another holds the lock.
const LOCKED: &str = "is being rewritten by another layercrypt process";

fn layer_size() -> u64 {
    let mib = std::env::var("LAYERCRYPT_CRASH_LAYER_MIB")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .expect("LAYERCRYPT_CRASH_LAYER_MIB is a number")
        })
        .unwrap_or(4);
    mib << 20
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_layercrypt")
}

/// Where the tests work: inside the target directory, so that copies can be hard links of
/// the fixtures (layercrypt never writes into an existing file, it renames new ones over).
fn work_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn jwe(name: &str) -> String {
    format!("jwe:{}", key(name))
}

fn oci(path: &Path) -> String {
    format!("oci:{}", path.display())
}

fn sha256_file(path: &Path) -> String {
    let mut hasher = Sha256::new();
    io::copy(&mut File::open(path).unwrap(), &mut hasher).unwrap();
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Run the binary to its end.
fn run(args: &[String]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn run_ok(args: &[String]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "layercrypt {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A copy of the file or directory tree `from` at `to`, made of hard links.
fn link_copy(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            link_copy(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        fs::hard_link(from, to).unwrap();
    }
}

/// Every path under `dir` whose name starts with `.layercrypt` (temporaries, pending lists).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(".layercrypt")
        {
            out.push(entry.path());
        } else if entry.file_type().unwrap().is_dir() {
            out.extend(leftovers(&entry.path()));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Checking an image, independently of layercrypt's own reader

/// The blobs of a store: a layout directory or the regular files of a tar.
enum Blobs {
    Layout(PathBuf),
    /// Name → (size, digest, content when small).
    Tar(BTreeMap<String, (u64, String, Option<Vec<u8>>)>),
}

impl Blobs {
    /// The size and hashed digest of blob `digest`, if present.
    fn stat(&self, digest: &str) -> Option<(u64, String)> {
        let name = format!("blobs/{}", digest.replacen(':', "/", 1));
        match self {
            Blobs::Layout(root) => {
                let path = root.join(name);
                let meta = fs::metadata(&path).ok()?;
                Some((meta.len(), sha256_file(&path)))
            }
            Blobs::Tar(files) => files.get(&name).map(|(s, d, _)| (*s, d.clone())),
        }
    }

    fn read(&self, name: &str) -> Vec<u8> {
        match self {
            Blobs::Layout(root) => fs::read(root.join(name)).unwrap(),
            Blobs::Tar(files) => files[name].2.clone().expect("a small file"),
        }
    }

    /// Every blob held, as digests (a name that is not one shows as it is).
    fn all(&self) -> BTreeSet<String> {
        let names: Vec<String> = match self {
            Blobs::Layout(root) => {
                let mut names = Vec::new();
                for alg in fs::read_dir(root.join("blobs")).unwrap() {
                    let alg = alg.unwrap();
                    for blob in fs::read_dir(alg.path()).unwrap() {
                        names.push(format!(
                            "blobs/{}/{}",
                            alg.file_name().to_string_lossy(),
                            blob.unwrap().file_name().to_string_lossy()
                        ));
                    }
                }
                names
            }
            Blobs::Tar(files) => files
                .keys()
                .filter(|n| n.starts_with("blobs/"))
                .cloned()
                .collect(),
        };
        names
            .iter()
            .map(|n| n["blobs/".len()..].replacen('/', ":", 1))
            .collect()
    }
}

/// Read a tar whole with the `tar` crate: every regular file hashed, small ones kept.
fn read_tar(path: &Path) -> Blobs {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(File::open(path).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry =
            entry.unwrap_or_else(|e| panic!("{} is not a valid tar: {e}", path.display()));
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let size = entry.size();
        let mut hasher = Sha256::new();
        let mut small = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            if size <= 4 << 20 {
                small.extend_from_slice(&buf[..n]);
            }
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let small = (size <= 4 << 20).then_some(small);
        assert!(
            files.insert(name.clone(), (size, digest, small)).is_none(),
            "{} holds {name} twice",
            path.display()
        );
    }
    Blobs::Tar(files)
}

/// An image found valid: every blob its index reaches is present with its size and digest.
struct Checked {
    index: Vec<u8>,
    /// The layer descriptors of every manifest, in order.
    layers: Vec<Value>,
    reached: BTreeSet<String>,
    held: BTreeSet<String>,
}

impl Checked {
    fn layer_digests(&self) -> Vec<String> {
        self.layers
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    fn all_encrypted(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l["mediaType"].as_str().unwrap().ends_with("+encrypted"))
    }

    /// How many wrapped keys each layer carries for JWE.
    fn jwe_recipients(&self) -> Vec<usize> {
        self.layers
            .iter()
            .map(|l| {
                l["annotations"]["org.opencontainers.image.enc.keys.jwe"]
                    .as_str()
                    .map_or(0, |s| s.split(',').count())
            })
            .collect()
    }
}

fn check(blobs: &Blobs, what: &str) -> Checked {
    fn walk(blobs: &Blobs, desc: &Value, out: &mut Checked, what: &str) {
        let digest = desc["digest"].as_str().unwrap().to_string();
        let size = desc["size"].as_u64().unwrap();
        let found = blobs
            .stat(&digest)
            .unwrap_or_else(|| panic!("{what}: blob {digest} is missing"));
        assert_eq!(
            found,
            (size, digest.clone()),
            "{what}: blob {digest} is damaged"
        );
        out.reached.insert(digest.clone());
        let media_type = desc["mediaType"].as_str().unwrap_or_default();
        if !(media_type.contains("manifest") || media_type.contains("index")) {
            return;
        }
        let doc: Value =
            serde_json::from_slice(&blobs.read(&format!("blobs/{}", digest.replacen(':', "/", 1))))
                .unwrap();
        for child in doc["manifests"].as_array().into_iter().flatten() {
            walk(blobs, child, out, what);
        }
        if let Some(config) = doc.get("config") {
            walk(blobs, config, out, what);
        }
        for layer in doc["layers"].as_array().into_iter().flatten() {
            walk(blobs, layer, out, what);
            out.layers.push(layer.clone());
        }
    }
    let index = blobs.read("index.json");
    let mut out = Checked {
        index: index.clone(),
        layers: Vec::new(),
        reached: BTreeSet::new(),
        held: blobs.all(),
    };
    let doc: Value = serde_json::from_slice(&index).unwrap();
    for entry in doc["manifests"].as_array().unwrap() {
        walk(blobs, entry, &mut out, what);
    }
    assert!(!out.layers.is_empty(), "{what}: no layers reached");
    out
}

fn check_layout(dir: &Path) -> Checked {
    assert!(
        dir.join("oci-layout").is_file(),
        "{} is no layout",
        dir.display()
    );
    check(
        &Blobs::Layout(dir.to_path_buf()),
        &dir.display().to_string(),
    )
}

fn check_archive(path: &Path) -> Checked {
    check(&read_tar(path), &path.display().to_string())
}

// ------------------------------------------------------------------------------------------
// Fixtures

struct Fixtures {
    /// The plain image, as a layout.
    plain: PathBuf,
    /// The same image in an oci-archive.
    plain_tar: PathBuf,
    /// The image encrypted for rsa2048 by the binary under test.
    encrypted: PathBuf,
}

/// Made once per test process, in a directory of its own that lives as long as it
/// (`crash-fixtures-PID` in the target directory's scratch space): statics are never dropped,
/// so the process removes the directories of earlier ones that are gone, and leaves alone
/// those of test processes still running on the same target directory.
fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("crash-fixtures-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        let root = parent.join(format!("crash-fixtures-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let plain = root.join("plain");
        let mut image = ImageSpec::new("linux", "amd64", 7);
        for _ in 0..LAYERS {
            image
                .layers
                .push(LayerSpec::new(layer_size(), Compression::None));
        }
        mkimage::write_image(&plain, "v1", &image).unwrap();
        let plain_tar = root.join("plain.tar");
        let mut tar = tar::Builder::new(File::create(&plain_tar).unwrap());
        tar.mode(tar::HeaderMode::Deterministic);
        tar.append_dir_all(".", &plain).unwrap();
        tar.into_inner().unwrap().sync_all().unwrap();
        let encrypted = root.join("encrypted");
        run_ok(&[
            "encrypt".into(),
            "-q".into(),
            "-r".into(),
            jwe("rsa2048.pub.pem"),
            oci(&plain),
            oci(&encrypted),
        ]);
        Fixtures {
            plain,
            plain_tar,
            encrypted,
        }
    })
}

// ------------------------------------------------------------------------------------------
// Killing runs

/// Where a run is cut short.
#[derive(Debug)]
enum Cut {
    /// The test sends SIGKILL after this long.
    After(Duration),
    /// strace sends SIGKILL as the run enters one of `calls` on `path` (or, without a path,
    /// the first of them at all), before the call runs.
    AtCall {
        calls: &'static str,
        path: Option<PathBuf>,
    },
}

/// Run `args` and cut it short; returns whether the kill landed (a run that finished first
/// must have succeeded).
fn run_cut(args: &[String], cut: &Cut) -> bool {
    let status: ExitStatus = match cut {
        Cut::After(delay) => {
            let mut child = Command::new(bin())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let start = Instant::now();
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if start.elapsed() >= *delay {
                    child.kill().unwrap();
                    break child.wait().unwrap();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        Cut::AtCall { calls, path } => Command::new("strace")
            .args(["-f", "-qq", "-o", "/dev/null"])
            .args(path.iter().flat_map(|p| [Path::new("-P"), p]))
            .args(["-e", &format!("trace={calls}")])
            .args(["-e", &format!("inject={calls}:signal=KILL")])
            .arg("--")
            .arg(bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run strace ({e}); install it with scripts/deps.sh --test")
            }),
    };
    match status.signal() {
        Some(9) => true,
        _ => {
            assert!(status.success(), "{args:?} cut at {cut:?}: {status}");
            false
        }
    }
}

/// One in-place rewrite to interrupt.
struct Scenario {
    name: &'static str,
    /// The layout directory or archive file it starts from.
    start: PathBuf,
    /// The command line, without the image reference.
    args: Vec<String>,
    /// Whether the target is an oci-archive (else a layout).
    archive: bool,
    /// Recognises the new image (the old one is recognised by its bytes).
    is_new: Box<dyn Fn(&Checked) -> bool>,
    /// Keys the new image must open with (`verify`), none for a plain result.
    keys: Vec<String>,
    /// Whether every run writes the same new blobs (decryption does; encryption draws new
    /// keys), so that a kill can wait for one of them.
    same_blobs: bool,
}

impl Scenario {
    fn target_ref(&self, target: &Path) -> String {
        if self.archive {
            format!("oci-archive:{}", target.display())
        } else {
            oci(target)
        }
    }

    fn command(&self, target: &Path) -> Vec<String> {
        let mut args = self.args.clone();
        args.push(self.target_ref(target));
        args
    }

    fn check(&self, target: &Path) -> Checked {
        if self.archive {
            check_archive(target)
        } else {
            check_layout(target)
        }
    }

    /// Whether `target` holds the starting image, byte for byte where it counts.
    fn is_old(&self, target: &Path, old: &Checked) -> bool {
        if self.archive {
            sha256_file(target) == sha256_file(&self.start)
        } else {
            fs::read(target.join("index.json")).unwrap() == old.index
        }
    }

    /// The state after a successful run: the new image and nothing else.
    fn check_done(&self, dir: &Path, target: &Path, what: &str) -> Checked {
        let new = self.check(target);
        assert!((self.is_new)(&new), "{what}: the run left no new image");
        assert_eq!(
            new.held, new.reached,
            "{what}: blobs held are not those reached"
        );
        assert_eq!(leftovers(dir), Vec::<PathBuf>::new(), "{what}: files left");
        if !self.keys.is_empty() {
            let mut args = vec!["verify".to_string(), "-q".into()];
            for k in &self.keys {
                args.extend(["-k".to_string(), key(k)]);
            }
            args.push(self.target_ref(target));
            run_ok(&args);
        }
        new
    }

    /// Kill the run at many points; after each, check what it left, run it again, and check
    /// the result.
    fn run(&self) {
        let began = Instant::now();
        let work = work_dir();
        let old = if self.archive {
            check_archive(&self.start)
        } else {
            check_layout(&self.start)
        };

        // An uncut run: how long it takes, and what it removes.
        let dir = work.path().join("uncut");
        fs::create_dir(&dir).unwrap();
        let target = dir.join("image");
        link_copy(&self.start, &target);
        let started = Instant::now();
        run_ok(&self.command(&target));
        let duration = started.elapsed();
        let new = self.check_done(&dir, &target, &format!("{}, uncut", self.name));
        if !self.keys.is_empty() {
            // Once, the whole way: every layer decrypts to its diff_id.
            let mut args = vec!["verify".to_string(), "-q".into(), "--full".into()];
            for k in &self.keys {
                args.extend(["-k".to_string(), key(k)]);
            }
            args.push(self.target_ref(&target));
            run_ok(&args);
        }
        let garbage: Vec<&String> = old.reached.difference(&new.reached).collect();
        let added: Vec<&String> = new.reached.difference(&old.reached).collect();

        let mut cuts: Vec<(Cut, Option<bool>)> = TIMED
            .iter()
            .map(|f| (Cut::After(duration.mul_f64(*f)), None))
            .collect();
        // The exact points (with the image they must leave): the new index (or archive)
        // about to be renamed into place; the first and the last old blob about to go; for
        // an archive, the first file removed at all, which is in the staging directory once
        // the new archive is in place.
        let renamed = if self.archive {
            PathBuf::from("image")
        } else {
            PathBuf::from("image/index.json")
        };
        cuts.push((
            Cut::AtCall {
                calls: "rename,renameat,renameat2",
                path: Some(renamed),
            },
            Some(false),
        ));
        if self.archive {
            cuts.push((
                Cut::AtCall {
                    calls: "unlink,unlinkat,rmdir",
                    path: None,
                },
                Some(true),
            ));
        } else {
            // The first and the last new blob (by digest) about to be published.
            if self.same_blobs {
                let mut ends = vec![added.first(), added.last()];
                ends.dedup();
                for digest in ends.into_iter().flatten() {
                    let blob = PathBuf::from("image/blobs").join(digest.replacen(':', "/", 1));
                    cuts.push((
                        Cut::AtCall {
                            calls: "rename,renameat,renameat2",
                            path: Some(blob),
                        },
                        Some(false),
                    ));
                }
            }
            let mut ends = vec![garbage.first(), garbage.last()];
            ends.dedup();
            for digest in ends.into_iter().flatten() {
                let blob = PathBuf::from("image/blobs").join(digest.replacen(':', "/", 1));
                cuts.push((
                    Cut::AtCall {
                        calls: "unlink,unlinkat",
                        path: Some(blob),
                    },
                    Some(true),
                ));
            }
        }

        let (mut landed, mut left_old, mut left_new) = (0, 0, 0);
        for (i, (cut, expect_new)) in cuts.iter_mut().enumerate() {
            let dir = work.path().join(format!("cut{i}"));
            fs::create_dir(&dir).unwrap();
            let target = dir.join("image");
            link_copy(&self.start, &target);
            if let Cut::AtCall {
                path: Some(path), ..
            } = cut
            {
                *path = dir.join(&*path);
            }
            let what = format!("{}, cut at {cut:?}", self.name);
            let killed = run_cut(&self.command(&target), cut);
            if expect_new.is_some() {
                assert!(killed, "{what}: the kill never came");
            }
            if killed {
                landed += 1;
                let state = self.check(&target);
                let is_old = self.is_old(&target, &old);
                assert!(
                    is_old || (self.is_new)(&state),
                    "{what}: the image is neither the old one nor the new one"
                );
                if let Some(expect_new) = expect_new {
                    assert_eq!(!is_old, *expect_new, "{what}: the wrong image");
                }
                if is_old {
                    left_old += 1;
                } else {
                    left_new += 1;
                }
                // The next run puts everything right.
                run_ok(&self.command(&target));
            }
            self.check_done(&dir, &target, &what);
            fs::remove_dir_all(&dir).unwrap();
        }
        eprintln!(
            "{}: uncut run {duration:.2?}; {} cuts, {landed} killed the run ({left_old} left the old image, {left_new} the new one); {:.1?} in all",
            self.name,
            cuts.len(),
            began.elapsed()
        );
    }
}

#[test]
fn killed_encrypt_in_place_leaves_the_old_or_the_new_image() {
    Scenario {
        name: "encrypt",
        start: fixtures().plain.clone(),
        args: vec![
            "encrypt".into(),
            "-q".into(),
            "-r".into(),
            jwe("rsa2048.pub.pem"),
        ],
        archive: false,
        is_new: Box::new(Checked::all_encrypted),
        keys: vec!["rsa2048.pem".into()],
        same_blobs: false,
    }
    .run();
}

#[test]
fn killed_decrypt_in_place_leaves_the_old_or_the_new_image() {
    let plain = check_layout(&fixtures().plain).layer_digests();
    Scenario {
        name: "decrypt",
        start: fixtures().encrypted.clone(),
        args: vec![
            "decrypt".into(),
            "-q".into(),
            "-k".into(),
            key("rsa2048.pem"),
        ],
        archive: false,
        is_new: Box::new(move |c| c.layer_digests() == plain),
        keys: Vec::new(),
        same_blobs: true,
    }
    .run();
}

#[test]
fn killed_rekey_add_leaves_the_old_or_the_new_image() {
    let layers = check_layout(&fixtures().encrypted).layer_digests();
    Scenario {
        name: "rekey --add",
        start: fixtures().encrypted.clone(),
        args: vec![
            "rekey".into(),
            "-q".into(),
            "-k".into(),
            key("rsa2048.pem"),
            "--add".into(),
            jwe("ec256.pub.pem"),
        ],
        archive: false,
        is_new: Box::new(move |c| {
            c.layer_digests() == layers && c.jwe_recipients() == vec![2; LAYERS]
        }),
        keys: vec!["ec256.pem".into()],
        same_blobs: false,
    }
    .run();
}

#[test]
fn killed_rekey_rotate_leaves_the_old_or_the_new_image() {
    let layers: BTreeSet<String> = check_layout(&fixtures().encrypted)
        .layer_digests()
        .into_iter()
        .collect();
    Scenario {
        name: "rekey --rotate --set",
        start: fixtures().encrypted.clone(),
        args: vec![
            "rekey".into(),
            "-q".into(),
            // The second key opens what a run killed after its commit left.
            "-k".into(),
            key("rsa2048.pem"),
            "-k".into(),
            key("ec384.pem"),
            "--rotate".into(),
            "--set".into(),
            jwe("ec384.pub.pem"),
        ],
        archive: false,
        is_new: Box::new(move |c| {
            c.all_encrypted() && c.layer_digests().iter().all(|d| !layers.contains(d))
        }),
        keys: vec!["ec384.pem".into()],
        same_blobs: false,
    }
    .run();
}

#[test]
fn killed_oci_archive_rewrite_leaves_the_old_or_the_new_archive() {
    Scenario {
        name: "encrypt oci-archive",
        start: fixtures().plain_tar.clone(),
        args: vec![
            "encrypt".into(),
            "-q".into(),
            "-r".into(),
            jwe("rsa2048.pub.pem"),
        ],
        archive: true,
        is_new: Box::new(Checked::all_encrypted),
        keys: vec!["rsa2048.pem".into()],
        same_blobs: false,
    }
    .run();
}

// ------------------------------------------------------------------------------------------
// A full disk

/// A small tmpfs, mounted for one test and unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = work_dir();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("layercrypt-test")
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs (the full-disk test needs root or CAP_SYS_ADMIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallFs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// A real copy (not links: the tmpfs is another file system).
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        fs::copy(from, to).unwrap();
    }
}

/// A run that hits a full disk: exit status 2 and an error saying so, with its hint.
fn assert_no_space(args: &[String]) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    // Transient: retrying once there is room may succeed.
    assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
    assert!(
        err.starts_with("error: ") && err.contains("No space left on device"),
        "{args:?}: {err}"
    );
    assert!(err.contains("hint: free some space"), "{args:?}: {err}");
}

/// A full disk, wherever it strikes (a layout rewritten in place, an existing layout added to,
/// a new layout, a new archive, an archive rewritten in place, a compressed archive being
/// decompressed), fails the run with exit status
/// 3 (transient) and a clear error, and leaves everything as it was: no blob, temporary file, staging
/// directory or pending list, and no half-written destination.
#[test]
fn a_full_disk_fails_cleanly_and_changes_nothing() {
    let work = work_dir();
    // 12 MiB of layers: it fits on 20 MiB, twice it does not.
    let source = work.path().join("source");
    let mut image = ImageSpec::new("linux", "amd64", 11);
    for _ in 0..2 {
        image
            .layers
            .push(LayerSpec::new(6 << 20, Compression::None));
    }
    mkimage::write_image(&source, "v1", &image).unwrap();
    let encrypt = |target: String| {
        vec![
            "encrypt".to_string(),
            "-r".into(),
            jwe("rsa2048.pub.pem"),
            target,
        ]
    };

    // In place.
    let small = SmallFs::mount("20m");
    let layout = small.path().join("layout");
    copy_tree(&source, &layout);
    let before = snapshot(&layout);
    assert_no_space(&encrypt(oci(&layout)));
    assert_eq!(snapshot(&layout), before, "the layout changed");
    assert_eq!(common::dir_entries(small.path()), ["layout"]);
    drop(small);

    // Into an existing layout that holds another image.
    let small = SmallFs::mount("8m");
    let existing = small.path().join("existing");
    let mut other = ImageSpec::new("linux", "amd64", 12);
    other
        .layers
        .push(LayerSpec::new(1 << 20, Compression::None));
    mkimage::write_image(&existing, "other", &other).unwrap();
    let before = snapshot(&existing);
    let mut args = encrypt(format!("oci:{}:v1", source.display()));
    args.push(format!("oci:{}:v1", existing.display()));
    assert_no_space(&args);
    assert_eq!(snapshot(&existing), before, "the existing layout changed");
    assert_eq!(common::dir_entries(small.path()), ["existing"]);
    drop(small);

    // Into a new layout, and into a new archive.
    let small = SmallFs::mount("8m");
    for destination in [
        oci(&small.path().join("new")),
        format!("oci-archive:{}", small.path().join("new.tar").display()),
    ] {
        let mut args = encrypt(oci(&source));
        args.push(destination);
        assert_no_space(&args);
        assert_eq!(common::dir_entries(small.path()), Vec::<String>::new());
    }
    drop(small);

    // An archive rewritten in place.
    let small = SmallFs::mount("20m");
    let archive = small.path().join("image.tar");
    let mut tar = tar::Builder::new(File::create(&archive).unwrap());
    tar.append_dir_all(".", &source).unwrap();
    tar.into_inner().unwrap().sync_all().unwrap();
    let before = fs::read(&archive).unwrap();
    assert_no_space(&encrypt(format!("oci-archive:{}", archive.display())));
    assert!(fs::read(&archive).unwrap() == before, "the archive changed");
    assert_eq!(common::dir_entries(small.path()), ["image.tar"]);

    // A compressed archive is decompressed beside it: no room for that either (reading it
    // fails on the disk, not on the archive).
    fs::remove_file(&archive).unwrap();
    let compressed = small.path().join("image.tar.gz");
    let gz = flate2::write::GzEncoder::new(
        File::create(&compressed).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(".", &source).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    assert_no_space(&[
        "inspect".into(),
        format!("oci-archive:{}", compressed.display()),
    ]);
    assert_eq!(common::dir_entries(small.path()), ["image.tar.gz"]);
    drop(small);
}

// ------------------------------------------------------------------------------------------
// Two runs at once

/// Runs started together on one layout (two in-place encryptions for different recipients,
/// a re-key and a reader) never corrupt it: each succeeds or is refused with the lock message
/// (exit status 2), and the layout is valid and holds nothing unreferenced: encrypted whole
/// and decrypting, or, when both encryptions were refused, as it was.
#[test]
fn runs_on_one_layout_at_once_take_turns_or_are_refused() {
    let work = work_dir();
    let source = work.path().join("source");
    let mut image = ImageSpec::new("linux", "amd64", 13);
    for _ in 0..3 {
        image
            .layers
            .push(LayerSpec::new(2 << 20, Compression::None));
    }
    mkimage::write_image(&source, "v1", &image).unwrap();
    let (mut refused, mut encrypted_rounds) = (0, 0);
    for round in 0..4 {
        let layout = work.path().join(format!("round{round}"));
        link_copy(&source, &layout);
        let runs: Vec<Vec<String>> = vec![
            vec![
                "encrypt".into(),
                "-q".into(),
                "-r".into(),
                jwe("rsa2048.pub.pem"),
                oci(&layout),
            ],
            vec![
                "encrypt".into(),
                "-q".into(),
                "-r".into(),
                jwe("ec256.pub.pem"),
                oci(&layout),
            ],
            vec![
                "rekey".into(),
                "-q".into(),
                "-k".into(),
                key("rsa2048.pem"),
                "-k".into(),
                key("ec256.pem"),
                "--add".into(),
                jwe("ec384.pub.pem"),
                oci(&layout),
            ],
            vec!["inspect".into(), oci(&layout)],
        ];
        let children: Vec<_> = runs
            .iter()
            .map(|args| {
                Command::new(bin())
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut encrypted = 0;
        for (args, child) in runs.iter().zip(children) {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                encrypted += usize::from(args[0] == "encrypt");
            } else {
                // Transient: the other run will finish.
                assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
                assert!(
                    err.contains(LOCKED) && err.contains("hint: "),
                    "{args:?}: {err}"
                );
                refused += 1;
            }
        }
        let state = check_layout(&layout);
        assert_eq!(state.held, state.reached, "round {round}");
        assert_eq!(leftovers(&layout), Vec::<PathBuf>::new(), "round {round}");
        if encrypted == 0 {
            // Both lost the race to the re-key or the reader: nothing changed.
            assert_eq!(state.index, fs::read(source.join("index.json")).unwrap());
            continue;
        }
        encrypted_rounds += 1;
        assert!(state.all_encrypted(), "round {round}");
        run_ok(&[
            "verify".into(),
            "-q".into(),
            "--full".into(),
            "-k".into(),
            key("rsa2048.pem"),
            "-k".into(),
            key("ec256.pem"),
            oci(&layout),
        ]);
    }
    eprintln!(
        "{refused} runs of 16 were refused by the lock; the layout was encrypted in {encrypted_rounds} rounds of 4"
    );
}
