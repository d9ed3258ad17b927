//! Many images in one run, for every command: a list (`--from-file`), a deterministic share of
//! it (`--shard K/N`), one JSON line per image as it finishes (`--json-lines`), and a journal
//! that makes a killed run resumable (`--journal`).
//!
//! - A list has one `SRC [DST]` per line; `#` starts a comment, blank lines are skipped, `-`
//!   reads standard input. Every line is parsed before any work starts, and a malformed one is
//!   an error that names it.
//! - `--shard K/N` keeps the images whose SRC reference (the text of the line) hashes to K:
//!   the first 8 bytes of its SHA-256, big-endian, modulo N. It depends on the reference alone,
//!   so adding or removing other lines never moves an image to another shard, and N workers with
//!   K = 0 … N−1 cover the list exactly once (Kubernetes' `JOB_COMPLETION_INDEX` is such a K).
//! - The journal is a file of JSON lines, one per finished image (command, source,
//!   destination, status, old and new digest), each appended and fsynced before the next image
//!   counts as done. A rerun with the same journal skips every image it records as `changed` or
//!   `unchanged` for the same command (failed ones run again). It is locked for the whole run: a
//!   second run on it is refused (exit 3), not interleaved. A run killed between finishing an
//!   image and recording it redoes that image, which gives the same result (every command is
//!   idempotent: re-keying to recipients it already has, encrypting what is encrypted, and
//!   decrypting what is plain change nothing).
//! - The exit status is the most severe of the images', in the order 2, 3, 1, 0: a permanent
//!   failure, a transient one (retry the run), a check that failed, success.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;
use layercrypt::error::Error;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{EXIT_CHECK_FAILED, EXIT_ERROR, EXIT_OK, EXIT_TRANSIENT, Failure};

/// Largest list read.
const MAX_LIST: u64 = 64 * 1024 * 1024;

/// Options for many images.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Many images")]
pub struct BatchArgs {
    /// Also process every image in LIST: one `SRC [DST]` per line, `#` comments, blank lines
    /// skipped; `-` reads standard input.
    #[arg(long = "from-file", value_name = "LIST")]
    pub from_file: Option<String>,
    /// Take only shard K of N (0 <= K < N) of the images: those whose SRC's SHA-256 (first 8
    /// bytes, big-endian) modulo N is K. Stable when other lines are added or removed.
    #[arg(long, value_name = "K/N", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Print one JSON object per image on stdout as soon as it is done (the --json schema plus
    /// `status`: changed, unchanged or failed), and a summary object last.
    #[arg(long = "json-lines", conflicts_with = "json")]
    pub json_lines: bool,
    /// Record every finished image in FILE (appended, fsynced); a rerun with the same FILE
    /// skips what it records as done. Locked while a run uses it.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
}

impl BatchArgs {
    /// Whether these options ask for a batch run even for one image.
    pub fn any(&self) -> bool {
        self.from_file.is_some()
            || self.shard.is_some()
            || self.json_lines
            || self.journal.is_some()
    }
}

/// `K/N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    k: u64,
    n: u64,
}

impl Shard {
    fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| "expected K/N, as 0/4".to_string())?;
        let k: u64 = k
            .trim()
            .parse()
            .map_err(|_| format!("K `{k}` is not a number"))?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("N `{n}` is not a number"))?;
        if n == 0 || k >= n {
            return Err(format!("K must be 0 to N-1 and N at least 1 (got {k}/{n})"));
        }
        Ok(Shard { k, n })
    }

    /// Whether the image `source` is in this shard.
    fn owns(&self, source: &str) -> bool {
        let hash = Sha256::digest(source.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        u64::from_be_bytes(first) % self.n == self.k
    }
}

/// One image to process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The source reference.
    pub source: String,
    /// The destination reference, if any.
    pub destination: Option<String>,
}

/// Read a list (`-` for stdin): every line checked with `check` (a reference parser) before
/// anything runs.
pub fn read_list(
    spec: &str,
    check: &dyn Fn(&str) -> Result<(), String>,
) -> Result<Vec<Item>, Failure> {
    let name = if spec == "-" {
        "standard input".to_string()
    } else {
        spec.to_string()
    };
    let fail = |reason: String| {
        Failure::Usage(
            format!("--from-file {name}: {reason}"),
            "each line is SRC [DST] (image references), `#` starts a comment",
        )
    };
    let mut text = String::new();
    let reader: Box<dyn Read> = if spec == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(spec).map_err(|e| fail(e.to_string()))?)
    };
    reader
        .take(MAX_LIST + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(e.to_string()))?;
    if text.len() as u64 > MAX_LIST {
        return Err(fail(format!("larger than {MAX_LIST} bytes")));
    }
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let content = line
            .split_once('#')
            .map_or(line, |(before, _)| before)
            .trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        if fields.len() > 2 {
            return Err(fail(format!(
                "line {}: expected SRC [DST], found {} fields",
                n + 1,
                fields.len()
            )));
        }
        for field in &fields {
            check(field).map_err(|e| fail(format!("line {}: {e}", n + 1)))?;
        }
        items.push(Item {
            source: fields[0].to_string(),
            destination: fields.get(1).map(|d| d.to_string()),
        });
    }
    Ok(items)
}

/// How an image ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Something was written.
    Changed,
    /// Nothing needed changing (or the command only reads).
    Unchanged,
    /// It failed (or, for `verify`, a check failed).
    Failed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
            Status::Failed => "failed",
        }
    }
}

/// What a command made of one image.
pub struct Done {
    /// How it ended (`Failed` here: a check failed, exit 1).
    pub status: Status,
    /// Its `--json` report.
    pub report: Value,
    /// The digest of its top-level manifest or index before and after, when there is one.
    pub digests: Option<(String, String)>,
}

/// The journal of finished images.
struct Journal {
    file: Mutex<File>,
    path: PathBuf,
    /// (source, destination) → status, for this command.
    done: HashMap<(String, Option<String>), Value>,
}

impl Journal {
    fn open(path: &Path, command: &str) -> Result<Journal, Failure> {
        let fail = |e: String| Failure::Journal(format!("journal {}: {e}", path.display()), false);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| fail(e.to_string()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Failure::Journal(
                    format!("journal {} is in use by another run", path.display()),
                    true,
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fail(e.to_string())),
        }
        let mut text = String::new();
        io::BufReader::new(&file)
            .read_to_string(&mut text)
            .map_err(|e| fail(e.to_string()))?;
        let mut done = HashMap::new();
        for line in text.lines() {
            // A line cut short by a kill is not a record.
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let finished = matches!(entry["status"].as_str(), Some("changed" | "unchanged"));
            if entry["command"] == command && finished {
                let key = (
                    entry["source"].as_str().unwrap_or_default().to_string(),
                    entry["destination"].as_str().map(str::to_string),
                );
                done.insert(key, entry);
            }
        }
        if !text.is_empty() && !text.ends_with('\n') {
            file.write_all(b"\n").map_err(|e| fail(e.to_string()))?;
        }
        Ok(Journal {
            file: Mutex::new(file),
            path: path.to_path_buf(),
            done,
        })
    }

    fn record(&self, entry: &Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Severity of an exit status in a batch: 2 > 3 > 1 > 0.
fn severity(code: u8) -> u8 {
    match code {
        EXIT_ERROR => 3,
        EXIT_TRANSIENT => 2,
        EXIT_CHECK_FAILED => 1,
        _ => 0,
    }
}

/// What a command does with one image of a batch: its own human output under the print lock
/// it is given, and what it made of the image.
pub type Work<'a> = dyn Fn(&Item, &Mutex<()>) -> Result<Done, Error> + Sync + 'a;

/// Output options of a batch.
pub struct Output {
    /// `--json`: one document after the run.
    pub json: bool,
    /// `-q`.
    pub quiet: bool,
    /// Images may run this many at a time.
    pub threads: usize,
}

/// Run `work` over `items` as `batch` says; returns the exit status and each image's JSON
/// line (whole with `--json`; else its source, status and, for registry images, digests). `work` prints its own human output (under the lock it is given) and returns what it
/// made of the image.
pub fn run(
    command: &str,
    items: Vec<Item>,
    batch: &BatchArgs,
    output: &Output,
    work: &Work<'_>,
) -> Result<(u8, Vec<Value>), Failure> {
    let total_listed = items.len();
    let items: Vec<Item> = match batch.shard {
        Some(shard) => items
            .into_iter()
            .filter(|i| shard.owns(&i.source))
            .collect(),
        None => items,
    };
    let journal = batch
        .journal
        .as_deref()
        .map(|p| Journal::open(p, command))
        .transpose()?;
    let printing = Mutex::new(());
    let emit = |line: &Value| {
        let _lock = printing.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, line);
        let _ = writeln!(out);
        let _ = out.flush();
    };
    // What is kept of each image until the end: its whole line only for `--json` (one
    // document), else a few fields, so that memory does not grow with the list.
    let results: Vec<Mutex<Option<Value>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let keep = |line: Value| -> Value {
        if output.json {
            return line;
        }
        let mut kept = json!({
            "source": line["source"],
            "status": line["status"],
            "journal": line["journal"],
            "transient": line["transient"],
        });
        // Registry images' digests, for what the command says after the run.
        if line["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("docker://"))
        {
            kept["images"] = line["images"]
                .as_array()
                .map(|images| {
                    images
                        .iter()
                        .map(|i| {
                            json!({
                                "name": i["name"],
                                "old_digest": i["old_digest"],
                                "new_digest": i["new_digest"],
                            })
                        })
                        .collect()
                })
                .unwrap_or(Value::Null);
        }
        kept
    };
    let worst = Mutex::new(EXIT_OK);
    let raise = |code: u8| {
        let mut w = worst.lock().unwrap_or_else(|p| p.into_inner());
        if severity(code) > severity(*w) {
            *w = code;
        }
    };
    let next = AtomicUsize::new(0);
    let journal_failed = Mutex::new(None::<String>);
    std::thread::scope(|scope| {
        for _ in 0..output.threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    if layercrypt::interrupt::requested()
                        || journal_failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .is_some()
                    {
                        return;
                    }
                    let key = (item.source.clone(), item.destination.clone());
                    if let Some(recorded) = journal.as_ref().and_then(|j| j.done.get(&key)) {
                        let mut line = recorded.clone();
                        line["journal"] = json!(true);
                        if batch.json_lines {
                            emit(&line);
                        }
                        *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(keep(line));
                        continue;
                    }
                    let (line, code) = match work(item, &printing) {
                        Ok(done) => {
                            let mut line = match done.report {
                                Value::Object(_) => done.report,
                                other => json!({ "report": other }),
                            };
                            line["status"] = json!(done.status.name());
                            line["source"] = json!(item.source);
                            line["destination"] = json!(item.destination);
                            if let Some((old, new)) = &done.digests {
                                line["old_digest"] = json!(old);
                                line["new_digest"] = json!(new);
                            }
                            let code = if done.status == Status::Failed {
                                line["error"] = json!("a check failed");
                                EXIT_CHECK_FAILED
                            } else {
                                EXIT_OK
                            };
                            (line, code)
                        }
                        Err(e) if layercrypt::interrupt::requested() && e.is_interrupted() => {
                            return;
                        }
                        Err(e) => {
                            let code = super::exit_status_of(&e);
                            if !batch.json_lines {
                                let _lock = printing.lock().unwrap_or_else(|p| p.into_inner());
                                super::diagnostic("error", &format!("{}: {e}", item.source));
                                if let Some(hint) = super::hint::hint(&e) {
                                    super::diagnostic("hint", &hint);
                                }
                            }
                            let line = json!({
                                "source": item.source,
                                "destination": item.destination,
                                "status": "failed",
                                "error": e.to_string(),
                                "transient": code == EXIT_TRANSIENT,
                            });
                            (line, code)
                        }
                    };
                    raise(code);
                    if let Some(j) = &journal {
                        let entry = json!({
                            "command": command,
                            "source": item.source,
                            "destination": item.destination,
                            "status": line["status"],
                            "old_digest": line.get("old_digest"),
                            "new_digest": line.get("new_digest"),
                        });
                        if let Err(e) = j.record(&entry) {
                            *journal_failed.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(format!("journal {}: {e}", j.path.display()));
                        }
                    }
                    if batch.json_lines {
                        emit(&line);
                    }
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(keep(line));
                }
            });
        }
    });
    if let Some(e) = journal_failed
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        return Err(Failure::Journal(e, true));
    }
    if layercrypt::interrupt::requested() {
        return Err(Error::from(layercrypt::interrupt::Interrupted).into());
    }
    let lines: Vec<Value> = results
        .into_iter()
        .filter_map(|r| r.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect();
    let count = |status: &str| lines.iter().filter(|l| l["status"] == status).count();
    let from_journal = lines.iter().filter(|l| l["journal"] == true).count();
    let code = *worst.lock().unwrap_or_else(|p| p.into_inner());
    let summary = json!({
        "command": command,
        "listed": total_listed,
        "images": lines.len(),
        "changed": count("changed"),
        "unchanged": count("unchanged"),
        "failed": count("failed"),
        "from_journal": from_journal,
        "transient": lines.iter().filter(|l| l["transient"] == true).count(),
        "exit": code,
    });
    let mut out = io::stdout().lock();
    if batch.json_lines {
        serde_json::to_writer(&mut out, &json!({ "summary": summary }))?;
        writeln!(out)?;
    } else if output.json {
        serde_json::to_writer_pretty(
            &mut out,
            &json!({ "operation": command, "reports": lines, "summary": summary }),
        )?;
        writeln!(out)?;
    } else if !output.quiet {
        writeln!(
            out,
            "{command}: {} image{}: {} changed, {} unchanged, {} failed{}",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            count("changed"),
            count("unchanged"),
            count("failed"),
            if from_journal > 0 {
                format!(" ({from_journal} done before, per the journal)")
            } else {
                String::new()
            }
        )?;
    }
    let failed: Vec<&str> = lines
        .iter()
        .filter(|l| l["status"] == "failed")
        .filter_map(|l| l["source"].as_str())
        .collect();
    if !failed.is_empty() && !batch.json_lines {
        drop(out);
        super::diagnostic(
            "error",
            &format!(
                "{} of {} images failed and were left as they were: {}",
                failed.len(),
                lines.len(),
                failed.join(", ")
            ),
        );
    }
    Ok((code, lines))
}

/// Read the whole of standard input's lines (for tests of the list format).
#[cfg(test)]
fn parse_text(text: &str) -> Result<Vec<Item>, Failure> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("list");
    std::fs::write(&path, text).unwrap();
    read_list(path.to_str().unwrap(), &|r| {
        if r.starts_with("bad") {
            Err("not a reference".into())
        } else {
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_have_one_src_and_maybe_a_dst_per_line() {
        let items = parse_text("# images\n\noci:a:v1\n  oci:b:v1 oci:c:v1  # copy\n").unwrap();
        assert_eq!(
            items,
            vec![
                Item {
                    source: "oci:a:v1".into(),
                    destination: None
                },
                Item {
                    source: "oci:b:v1".into(),
                    destination: Some("oci:c:v1".into())
                },
            ]
        );
        for (text, line) in [
            ("a\nx y z\n", "line 2:"),
            ("a\nbad\n", "line 2: not a reference"),
        ] {
            match parse_text(text) {
                Err(Failure::Usage(m, _)) => assert!(m.contains(line), "{m}"),
                _ => panic!("{text:?} accepted"),
            }
        }
    }

    #[test]
    fn shards_partition_the_list_and_depend_on_the_reference_alone() {
        let sources: Vec<String> = (0..1000)
            .map(|i| format!("oci:/images/app-{i}:v1"))
            .collect();
        for n in [1u64, 2, 3, 7] {
            let shards: Vec<Shard> = (0..n).map(|k| Shard { k, n }).collect();
            let mut sizes = vec![0usize; n as usize];
            for s in &sources {
                let owners: Vec<usize> = (0..n as usize).filter(|&k| shards[k].owns(s)).collect();
                assert_eq!(owners.len(), 1, "{s} in {owners:?} of {n}");
                sizes[owners[0]] += 1;
            }
            // Roughly even: none of the shards is empty or has more than twice its share.
            for size in sizes {
                assert!(size > 0 && size < 2 * 1000 / n as usize + 10, "{n}: {size}");
            }
        }
        assert!(Shard::parse("3/3").is_err());
        assert!(Shard::parse("0/0").is_err());
        assert!(Shard::parse("1").is_err());
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { k: 2, n: 5 });
    }

    #[test]
    fn the_most_severe_exit_status_wins() {
        let worst = |codes: &[u8]| codes.iter().copied().max_by_key(|c| severity(*c)).unwrap();
        assert_eq!(worst(&[0, 1, 3]), 3);
        assert_eq!(worst(&[3, 2, 1]), 2);
        assert_eq!(worst(&[0, 1]), 1);
        assert_eq!(worst(&[0]), 0);
    }
}
