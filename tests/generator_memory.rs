//! The test-image generator streams: peak memory stays small however big the layers. This
//! test has a binary of its own, not a module of `tests/it`, so that nothing else runs in its
//! process while the peak resident set size (`VmHWM`, process-wide) is read.

#[path = "it/common/mkimage.rs"]
mod mkimage;

use std::fs;

use mkimage::{Compression, ImageSpec, LayerSpec, write_image};

#[test]
fn large_layers_stream_with_bounded_memory() {
    const LAYER: u64 = 192 << 20;
    const LIMIT_KIB: u64 = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let mut image = ImageSpec::new("linux", "amd64", 1);
    image.layers = vec![
        LayerSpec::new(LAYER, Compression::GzipFast),
        LayerSpec::new(LAYER, Compression::None),
        LayerSpec::new(LAYER, Compression::Zstd),
    ];
    let w = write_image(dir.path(), "v1", &image).unwrap();
    // Each layer is bigger than the memory limit, so only streaming can stay under it.
    assert!(w.images[0].layers.iter().all(|l| l.size > LIMIT_KIB * 1024));
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(hwm_kib < LIMIT_KIB, "peak RSS {hwm_kib} KiB");
}
