//! Tests of the tar layer: hostile entries and links, compressed archives, locking, and
//! archives written sequentially and by regions, read back by this index and by GNU tar.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::regions::{REGION_ALIGN, comment_record};
use super::*;
use crate::store::StoreError;
use crate::store::direct::AlignedBuf;

/// Build a raw tar from (name, type, link target, data) entries, bypassing the builder's
/// own path checks so hostile names can be written.
fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn scan(bytes: &[u8]) -> Result<TarIndex, StoreError> {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    TarIndex::scan(&f, Path::new("test.tar"))
}

fn reason(bytes: &[u8]) -> String {
    match scan(bytes) {
        Err(StoreError::BadArchive { reason, .. }) => reason,
        other => panic!("accepted or wrong error: {other:?}"),
    }
}

use tar::EntryType::{Directory, Link, Regular, Symlink};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// An archive written by `TarRegions` with files of every shape written at once.
fn regions_archive(dir: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let path = dir.join("r.tar");
    let tar = TarRegions::create(&path).unwrap();
    tar.add_bytes("oci-layout", b"{}").unwrap();
    tar.add_dir("blobs").unwrap();
    let sizes = [
        0,
        1,
        511,
        512,
        4096,
        AlignedBuf::CAPACITY,
        2 * AlignedBuf::CAPACITY + 77,
    ];
    let files: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("blobs/f{i}"), pattern(len, i as u8)))
        .collect();
    std::thread::scope(|s| {
        for (name, data) in &files {
            let tar = &tar;
            s.spawn(move || {
                let mut region = tar.reserve(data.len() as u64).unwrap();
                for piece in data.chunks(300_000) {
                    region.write_all(piece).unwrap();
                }
                assert!(region.seal(name).unwrap());
            });
        }
    });
    tar.add_file(
        "big-from-reader",
        3 * 1024 * 1024 + 5,
        &pattern(3 * 1024 * 1024 + 5, 9)[..],
    )
    .unwrap();
    tar.add_bytes("index.json", b"{\"x\":1}").unwrap();
    tar.finish(0o640).unwrap();
    (path, files)
}

#[test]
fn regions_make_an_archive_every_reader_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, files) = regions_archive(tmp.path());
    let file = File::open(&path).unwrap();
    let index = TarIndex::scan(&file, &path).unwrap();
    for (name, data) in &files {
        let entry = index.get(name).unwrap();
        assert_eq!(entry.size, data.len() as u64, "{name}");
        assert_eq!(entry.offset % REGION_ALIGN, 0, "{name}: data is aligned");
        let mut back = vec![0; data.len()];
        file.read_exact_at(&mut back, entry.offset).unwrap();
        assert!(back == *data, "{name}");
    }
    assert!(index.get("index.json").is_some() && index.get("oci-layout").is_some());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // Beside the target, nothing but the archive.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);

    // GNU tar (what a user inspects an archive with) sees the files and no padding.
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&path)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let names = String::from_utf8(listed.stdout).unwrap();
    let mut expected: Vec<&str> = vec!["oci-layout", "blobs/"];
    expected.extend(names.lines().filter(|n| n.starts_with("blobs/f")));
    expected.extend(["big-from-reader", "index.json"]);
    assert_eq!(names.lines().collect::<Vec<_>>(), expected);
    assert_eq!(
        names.lines().filter(|n| n.starts_with("blobs/f")).count(),
        files.len()
    );
    // And it extracts them intact.
    let out = tmp.path().join("x");
    fs::create_dir(&out).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&path)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    for (name, data) in &files {
        assert!(fs::read(out.join(name)).unwrap() == *data, "{name}");
    }
}

#[test]
fn a_region_left_empty_or_filled_twice_is_compacted_away() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("h.tar");
    let tar = TarRegions::create(&path).unwrap();
    let data = pattern(AlignedBuf::CAPACITY + 3, 1);
    for _ in 0..2 {
        let mut r = tar.reserve(data.len() as u64).unwrap();
        r.write_all(&data).unwrap();
        r.seal("blobs/same").unwrap();
    }
    let mut abandoned = tar.reserve(100).unwrap();
    abandoned.write_all(b"partial").unwrap();
    drop(abandoned);
    let mut short = tar.reserve(100).unwrap();
    short.write_all(b"short").unwrap();
    assert!(short.seal("blobs/short").is_err());
    let mut long = tar.reserve(3).unwrap();
    assert!(long.write_all(b"long").is_err());
    drop(long);
    tar.add_bytes("index.json", b"{}").unwrap();
    tar.finish(0o644).unwrap();
    let file = File::open(&path).unwrap();
    let index = TarIndex::scan(&file, &path).unwrap();
    assert_eq!(
        index.names().collect::<Vec<_>>(),
        ["blobs/same", "index.json"]
    );
    let entry = index.get("blobs/same").unwrap();
    let mut back = vec![0; data.len()];
    file.read_exact_at(&mut back, entry.offset).unwrap();
    assert!(back == data);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn a_size_no_archive_can_hold_is_refused_without_overflow() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = TarRegions::create(&tmp.path().join("big.tar")).unwrap();
    for size in [u64::MAX, u64::MAX - 511, u64::MAX - 4096] {
        assert!(tar.reserve(size).is_err(), "{size}");
    }
    // A size that fits the arithmetic but not the file system: the region cannot be
    // sealed, nothing after it can be written (an error, not a panic), and the archive,
    // dropped unfinished, leaves nothing behind.
    let mut huge = tar.reserve(1 << 62).unwrap();
    assert!(huge.write_all(&[1; 10]).is_ok());
    assert!(huge.seal("blobs/huge").is_err());
    assert!(tar.reserve(u64::MAX - (1 << 62)).is_err());
    assert!(tar.add_bytes("index.json", b"{}").is_err());
    drop(tar);
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn writers_of_the_same_blob_at_once_name_one_region() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.tar");
    let tar = TarRegions::create(&path).unwrap();
    let data = pattern(10_000, 3);
    let named = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut r = tar.reserve(data.len() as u64).unwrap();
                    r.write_all(&data).unwrap();
                    r.seal("blobs/same").unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&named| named)
            .count()
    });
    assert_eq!(named, 1);
    tar.finish(0o644).unwrap();
    let index = TarIndex::scan(&File::open(&path).unwrap(), &path).unwrap();
    assert_eq!(index.names().collect::<Vec<_>>(), ["blobs/same"]);
}

#[test]
fn a_region_still_open_fails_the_archive_and_dropping_it_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("o.tar");
    let tar = TarRegions::create(&path).unwrap();
    let region = tar.reserve(10).unwrap();
    std::mem::forget(region);
    assert!(tar.finish(0o644).is_err());
    assert!(!path.exists());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn comment_records_have_the_length_they_declare() {
    for len in [512, 1000, 3584, 4607] {
        let r = comment_record(len);
        assert_eq!(r.len(), len);
        let text = String::from_utf8(r).unwrap();
        let (declared, _) = text.split_once(' ').unwrap();
        assert_eq!(declared.parse::<usize>().unwrap(), len);
        assert!(text.ends_with('\n') && text.contains(" comment=layercrypt"));
    }
}

#[test]
fn indexes_files_and_resolves_links_inside_the_archive() {
    let bytes = raw_tar(&[
        ("./blobs/", Directory, "", b""),
        ("./blobs/sha256/abc", Regular, "", b"hello"),
        ("x/layer.tar", Symlink, "../blobs/sha256/abc", b""),
        ("y/layer.tar", Link, "blobs/sha256/abc", b""),
        ("z", Symlink, "x/layer.tar", b""),
    ]);
    let index = scan(&bytes).unwrap();
    let e = index.get("blobs/sha256/abc").unwrap();
    assert_eq!(e.size, 5);
    for alias in ["x/layer.tar", "y/layer.tar", "z"] {
        assert_eq!(index.get(alias), Some(e), "{alias}");
    }
    assert_eq!(
        &bytes[e.offset as usize..(e.offset + e.size) as usize],
        b"hello"
    );
}

#[test]
fn accepts_the_root_directory_gnu_tar_writes() {
    // `tar -C layout -cf image.tar .`
    let bytes = raw_tar(&[
        ("./", Directory, "", b""),
        ("./oci-layout", Regular, "", b"{}"),
    ]);
    let index = scan(&bytes).unwrap();
    assert_eq!(index.names().collect::<Vec<_>>(), ["oci-layout"]);
    // A root that is a file, or an absolute one, is still refused.
    assert!(reason(&raw_tar(&[("./", Regular, "", b"x")])).contains("empty name"));
    assert!(reason(&raw_tar(&[("/", Directory, "", b"")])).contains("absolute"));
}

#[test]
fn refuses_hostile_entries() {
    for (entries, expect) in [
        (vec![("/etc/passwd", Regular, "", &b"x"[..])], "absolute"),
        (vec![("a/../../x", Regular, "", &b"x"[..])], "`..`"),
        (
            vec![("a", Symlink, "/etc/shadow", &b""[..])],
            "absolute path",
        ),
        (vec![("a/b", Symlink, "../../x", &b""[..])], "outside"),
        (vec![("a", Symlink, "missing", &b""[..])], "does not hold"),
        (vec![("a", Link, "../x", &b""[..])], "`..`"),
        (
            vec![("a", Symlink, "b", &b""[..]), ("b", Symlink, "a", &b""[..])],
            "loop",
        ),
        (
            vec![
                ("a", Regular, "", &b"1"[..]),
                ("./a", Regular, "", &b"2"[..]),
            ],
            "twice",
        ),
        (vec![("fifo", tar::EntryType::Fifo, "", &b""[..])], "Fifo"),
    ] {
        let r = reason(&raw_tar(&entries));
        assert!(r.contains(expect), "{entries:?}: {r}");
    }
}

#[test]
fn refuses_sizes_that_lie() {
    let mut bytes = raw_tar(&[("a", Regular, "", b"12345")]);
    // Claim 1 MiB in the header of a 5-byte file, then cut the archive short.
    let mut h = tar::Header::from_byte_slice(&bytes[..512]).clone();
    h.set_size(1 << 20);
    h.set_cksum();
    bytes[..512].copy_from_slice(h.as_bytes());
    bytes.truncate(1024);
    assert!(reason(&bytes).contains("more than the archive holds"));
    assert!(!reason(b"not a tar at all, just some text that is long enough").is_empty());
}

#[test]
fn writer_round_trips_and_replaces_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tar");
    fs::write(&target, b"old").unwrap();
    let mut w = TarWriter::create(&target).unwrap();
    w.add_dir("blobs").unwrap();
    w.add_bytes("blobs/sha256/aa", b"data").unwrap();
    w.add_symlink("l", "blobs/sha256/aa").unwrap();
    assert!(
        w.add_file("short", 10, &b"abc"[..]).is_err(),
        "a short source must fail"
    );
    drop(w);
    assert_eq!(
        fs::read(&target).unwrap(),
        b"old",
        "dropped writer changed the target"
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    let mut w = TarWriter::create(&target).unwrap();
    w.add_bytes("blobs/sha256/aa", b"data").unwrap();
    w.add_symlink("l", "blobs/sha256/aa").unwrap();
    assert_eq!(w.add_file_unsized("late", &b"sized late"[..]).unwrap(), 10);
    w.add_bytes("after", b"!").unwrap();
    w.finish(0o644).unwrap();
    let t = Tarball::open(&target, false).unwrap();
    let mut s = String::new();
    t.open_file("l").unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "data");
    assert_eq!(t.read_file("late", 100).unwrap().unwrap(), b"sized late");
    assert_eq!(t.read_file("after", 100).unwrap().unwrap(), b"!");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn reads_gzip_compressed_archives() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw_tar(&[("f", Regular, "", b"zipped")]))
        .unwrap();
    fs::write(&path, gz.finish().unwrap()).unwrap();
    let t = Tarball::open(&path, false).unwrap();
    assert_eq!(t.compression(), Compression::Gzip);
    // The decompressed copy has no name and is private.
    assert_eq!(
        t.data.metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(t.read_file("f", 100).unwrap().unwrap(), b"zipped");
    assert!(t.read_file("f", 2).is_err());
}

#[test]
fn locks_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    fs::write(&path, raw_tar(&[("f", Regular, "", b"x")])).unwrap();
    let _reader = Tarball::open(&path, false).unwrap();
    assert!(Tarball::open(&path, false).is_ok());
    assert!(matches!(
        Tarball::open(&path, true),
        Err(StoreError::Locked { .. })
    ));
}

#[test]
fn opening_an_archive_to_rewrite_it_removes_what_killed_runs_left_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.tar");
    fs::write(&path, raw_tar(&[("f", Regular, "", b"x")])).unwrap();
    let stale = [
        dir.path().join(".layercrypt-tmp-Stage1"),
        dir.path().join(".layercrypt-tmp-Tar001"),
    ];
    fs::create_dir_all(stale[0].join("layout")).unwrap();
    fs::write(&stale[1], b"half an archive").unwrap();
    drop(Tarball::open(&path, false).unwrap());
    assert!(stale.iter().all(|p| p.exists()), "a reader removed them");
    drop(Tarball::open(&path, true).unwrap());
    assert!(stale.iter().all(|p| !p.exists()));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}
