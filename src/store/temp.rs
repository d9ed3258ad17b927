//! The temporary files and directories layercrypt makes while it writes, and the sweep that
//! removes those a killed run left.
//!
//! Every temporary is named `.layercrypt-tmp-` and six random letters or digits, is created
//! mode 0600 (a file) or 0700 (a directory), and is locked (`flock`, exclusive) by the process
//! that made it for as long as that process holds it. The kernel releases the lock when the
//! process exits, however it exits, `kill -9` included. So a temporary that can be locked has no
//! living owner, and [`sweep`] removes it; one that cannot be locked belongs to a run still
//! going (in this process or another) and is left alone.
//!
//! Must never remove anything that is not unmistakably ours: a name that does not match
//! exactly, a symbolic link, a FIFO or a device are left alone (the type of an entry is checked
//! before it is opened), and an entry is removed only while the sweep holds the lock on the very
//! file or directory the name still points to.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Prefix of every temporary file or directory layercrypt creates.
pub const TEMP_PREFIX: &str = ".layercrypt-tmp-";

/// Number of random characters after [`TEMP_PREFIX`].
const RANDOM_CHARS: usize = 6;

/// How often a new temporary is tried when a sweep removed the previous one before it could
/// be locked (it never happens twice in a row in practice).
const ATTEMPTS: usize = 8;

/// Whether `name` is the name of one of our temporaries.
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX).is_some_and(|rest| {
        rest.len() == RANDOM_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(TEMP_PREFIX).rand_bytes(RANDOM_CHARS);
    b
}

/// Whether `path` still names the file `held` is open on.
fn same_file(held: &File, path: &Path) -> io::Result<bool> {
    let held = held.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Lock `file` for its owner: `Ok(false)` when a sweep got there first (between the creation
/// and the lock), so the temporary is, or is about to be, removed.
fn claim(file: &File, path: &Path) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => same_file(file, path),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

fn lost_race() -> io::Error {
    io::Error::other("temporary files kept disappearing while they were created")
}

/// A new temporary file (mode 0600) in `dir`, locked for this process.
pub fn file_in(dir: &Path) -> io::Result<NamedTempFile> {
    for _ in 0..ATTEMPTS {
        let temp = builder().tempfile_in(dir)?;
        if claim(temp.as_file(), temp.path())? {
            return Ok(temp);
        }
        // A sweep holds it and removes it; it cannot be ours any more. Forget it without
        // touching the name, which may already be gone.
        let _ = temp.into_temp_path().keep();
    }
    Err(lost_race())
}

/// Rename the temporary file `temp` to `to` (replacing what is there) and release its lock:
/// it is no temporary any more.
pub fn persist(temp: NamedTempFile, to: &Path) -> io::Result<()> {
    let file = temp.persist(to).map_err(|e| e.error)?;
    // The lock belongs to the open file, which a child being started in another thread may
    // share for a moment; release it rather than wait for the last copy to close.
    let _ = file.unlock();
    Ok(())
}

/// A temporary directory (mode 0700) and the lock that marks it as in use. Dropping it removes
/// the directory and everything in it, then releases the lock.
#[derive(Debug)]
pub struct TempDir {
    // `Drop` removes the directory while the lock, dropped with the fields, is still held.
    dir: Option<tempfile::TempDir>,
    lock: Option<File>,
}

impl TempDir {
    /// A new temporary directory in `dir`, locked for this process.
    pub fn new_in(dir: &Path) -> io::Result<TempDir> {
        for _ in 0..ATTEMPTS {
            let temp = builder()
                .permissions(fs::Permissions::from_mode(0o700))
                .tempdir_in(dir)?;
            let lock = match File::open(temp.path()) {
                Ok(lock) => lock,
                // Already swept away.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    let _ = temp.keep();
                    continue;
                }
                Err(e) => return Err(e),
            };
            if claim(&lock, temp.path())? {
                return Ok(TempDir {
                    dir: Some(temp),
                    lock: Some(lock),
                });
            }
            let _ = temp.keep();
        }
        Err(lost_race())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("kept only by `keep`").path()
    }

    /// Stop removing the directory on drop (it is about to be renamed into place). The
    /// returned lock is held until it is dropped.
    pub fn keep(mut self) -> (PathBuf, File) {
        let path = self.dir.take().expect("kept only once").keep();
        let lock = self.lock.take().expect("kept only once");
        (path, lock)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Remove the temporaries in `dir` that no living process holds (what killed runs left);
/// returns what was removed. Errors are ignored: what cannot be removed now is left for a
/// later run.
pub fn sweep(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_name().to_str().is_some_and(is_temp_name) {
            continue;
        }
        // The type of the entry itself, not of what a link points to.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_file() && !kind.is_dir() {
            continue;
        }
        let path = entry.path();
        let Ok(lock) = File::open(&path) else {
            continue;
        };
        if lock.try_lock().is_err() || !same_file(&lock, &path).unwrap_or(false) {
            continue;
        }
        let gone = if kind.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn names_are_recognised_exactly() {
        assert!(is_temp_name(".layercrypt-tmp-a1B2c3"));
        for other in [
            ".layercrypt-tmp-",
            ".layercrypt-tmp-abc",
            ".layercrypt-tmp-abcdefg",
            ".layercrypt-tmp-abc-de",
            "layercrypt-tmp-abcdef",
            ".layercrypt-tmp-index",
        ] {
            assert!(!is_temp_name(other), "{other}");
        }
    }

    #[test]
    fn temporaries_are_private_and_locked_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_in(dir.path()).unwrap();
        let sub = TempDir::new_in(dir.path()).unwrap();
        assert!(is_temp_name(
            &file.path().file_name().unwrap().to_string_lossy()
        ));
        assert!(is_temp_name(
            &sub.path().file_name().unwrap().to_string_lossy()
        ));
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(mode(sub.path()), 0o700);
        // Held by this run: a sweep (even from this process) leaves them alone.
        assert!(sweep(dir.path()).is_empty());
        assert!(file.path().exists() && sub.path().exists());
        let (file_path, sub_path) = (file.path().to_path_buf(), sub.path().to_path_buf());
        drop(file);
        drop(sub);
        assert!(!file_path.exists() && !sub_path.exists());
    }

    #[test]
    fn a_sweep_removes_only_unheld_temporaries_of_ours() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // What a killed run leaves: a file and a directory with content, no longer locked.
        let stale_file = root.join(".layercrypt-tmp-Abc123");
        fs::write(&stale_file, b"half a blob").unwrap();
        let stale_dir = root.join(".layercrypt-tmp-Def456");
        fs::create_dir_all(stale_dir.join("layout/blobs/sha256")).unwrap();
        fs::write(stale_dir.join("layout/blobs/sha256/x"), b"staged").unwrap();
        // What is not ours, or not a file or directory.
        let keep = [
            root.join(".layercrypt-tmp-notours"),
            root.join("layercrypt-tmp-Abc123"),
            root.join("image.tar"),
        ];
        for k in &keep {
            fs::write(k, b"user data").unwrap();
        }
        let target = root.join("target");
        fs::write(&target, b"do not follow").unwrap();
        let link = root.join(".layercrypt-tmp-Link00");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let fifo = root.join(".layercrypt-tmp-Fifo00");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // And one a living run holds.
        let live = file_in(root).unwrap();

        let mut removed = sweep(root);
        removed.sort();
        assert_eq!(removed, vec![stale_file.clone(), stale_dir.clone()]);
        assert!(!stale_file.exists() && !stale_dir.exists());
        for k in keep.iter().chain([&target, &link, &fifo]) {
            assert!(
                fs::symlink_metadata(k).is_ok(),
                "{} was removed",
                k.display()
            );
        }
        assert!(live.path().exists());
    }

    #[test]
    fn a_kept_directory_stays_locked_until_its_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (path, lock) = TempDir::new_in(dir.path()).unwrap().keep();
        assert!(sweep(dir.path()).is_empty());
        drop(lock);
        assert_eq!(sweep(dir.path()), vec![path]);
    }
}
