//! An embedder stops a run with `layercrypt::interrupt::request` (issue 14, point 2), here from
//! the progress observer once the first layer has started streaming: the run fails with an
//! error that says it was interrupted, and the layout is as it was, with no temporary left.
//!
//! A test binary of its own, not a module of `tests/it`: a stop request is permanent for the
//! whole process (`layercrypt::interrupt` is a process-wide flag), so every run of every other
//! test in the same process would fail as interrupted.

#[path = "it/common/mod.rs"]
mod common;

use std::fs;
use std::path::Path;

use common::*;
use layercrypt::engine::{self, Request};
use layercrypt::keywrap::{Environment, Registry};
use layercrypt::plan::{Operation, Selection};
use layercrypt::progress::{BlobProgress, Item, Progress};
use layercrypt::store::ImageRef;

/// Requests a stop as soon as any blob has moved.
struct StopAfterFirstChunk;

impl Progress for StopAfterFirstChunk {
    fn start(&self, _item: Item<'_>, _total: u64) -> Box<dyn BlobProgress + '_> {
        Box::new(StopAfterFirstChunk)
    }
}

impl BlobProgress for StopAfterFirstChunk {
    fn advance(&mut self, _bytes: u64) {
        layercrypt::interrupt::request();
    }
}

fn temporaries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("blobs/sha256")] {
        for e in fs::read_dir(sub).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".layercrypt-") {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn a_stop_requested_while_layers_stream_fails_the_run_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture_copy("plain", tmp.path());
    let before = snapshot(&dir);
    let registry = Registry::new(&Environment::from_process(None)).unwrap();
    let recipients = registry
        .load_recipients(&[format!("jwe:{}", key("rsa2048.pub.pem"))])
        .map_err(|f| f.error)
        .unwrap();
    let request = Request {
        source: ImageRef::parse(&format!("oci:{}", dir.display())).unwrap(),
        destination: None,
        selection: Selection::default(),
        operation: Operation::Encrypt { recipients },
        jobs: Some(1),
        dry_run: false,
        registry,
    };
    let error = engine::run_with_progress(&request, &|_| {}, &StopAfterFirstChunk)
        .expect_err("the run was stopped");
    assert!(error.is_interrupted(), "{error}");
    assert_eq!(temporaries(&dir), Vec::<String>::new());
    assert!(snapshot(&dir) == before, "the layout changed");

    // Once requested, the stop holds for every later run of the process.
    let again = engine::run(&request, &|_| {}).expect_err("still stopped");
    assert!(again.is_interrupted(), "{again}");
    assert!(snapshot(&dir) == before, "the layout changed");
}
