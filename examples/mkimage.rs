//! `mkimage`: write a deterministic OCI image layout for tests and benchmarks.
//!
//! A thin command line over `tests/it/common/mkimage.rs`; run with `--help` for the options.
//! Exit codes: 0 written, 1 I/O error, 2 bad arguments (usage printed to stderr).
//!
//! ```text
//! cargo run --release --example mkimage -- /tmp/img --ref v1 --layers 4 --layer-size 128M \
//!     --compression gzip-fast --platforms linux/amd64,linux/arm64/v8
//! ```

#[path = "../tests/it/common/mkimage.rs"]
mod mkimage;

use std::path::PathBuf;
use std::process::ExitCode;

use mkimage::{Compression, ImageSpec, LayerSpec, Written};

const USAGE: &str = "\
usage: mkimage DIR [OPTIONS]

Writes (or adds to) the OCI image layout DIR; the same options always give the same bytes.

options:
  --ref NAME              reference name in index.json (default: latest)
  --seed N                content seed (default: 0)
  --platform OS/ARCH[/V]  platform of a single-manifest image (default: linux/amd64)
  --platforms P1,P2,...   write an image index with one manifest per platform instead;
                          platform number i (from 0) uses seed N+i
  --layers N              number of layers (default: 1)
  --layer-size SIZE       file content per layer, e.g. 4096, 64K, 128M, 1G (default: 1M)
  --compression C         none, gzip, gzip-fast or zstd (default: gzip)
  --compressible          text content (compresses ~3:1) instead of random bytes
  --files N               regular files per layer (default: 3)
  --layer SPEC            one layer, bottom first, repeatable; replaces --layers/--layer-size.
                          SPEC = SIZE[,C][,compressible][,files=N][,seed=N][,platform=P]
                                 [,annotation=KEY=VALUE]...
                          C, compressible and files default to the options above; seed=N
                          fixes the content (equal specs with equal seeds share one blob);
                          platform=P puts the layer only into that platform's image
  --annotation KEY=VALUE  manifest annotation (repeatable)
  -h, --help              show this help
";

/// Parsed command line; building it does no I/O.
struct Args {
    dir: PathBuf,
    ref_name: String,
    /// `Some` for `--platforms` (write an index), `None` for a single manifest.
    platforms: Option<Vec<String>>,
    platform: String,
    seed: u64,
    layers: Vec<(LayerSpec, Option<String>)>,
    manifest_annotations: Vec<(String, String)>,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(&argv) {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("mkimage: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let images = match build_images(&args) {
        Ok(images) => images,
        Err(msg) => {
            eprintln!("mkimage: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match args.platforms {
        Some(_) => mkimage::write_multiarch(&args.dir, &args.ref_name, &images),
        None => mkimage::write_image(&args.dir, &args.ref_name, &images[0]),
    };
    match result {
        Ok(written) => {
            report(&args, &written);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkimage: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut dir = None;
    let mut ref_name = "latest".to_owned();
    let mut platforms = None;
    let mut platform = "linux/amd64".to_owned();
    let mut seed = 0u64;
    let mut count: Option<usize> = None;
    let mut layer_size: Option<u64> = None;
    let mut compression = Compression::Gzip;
    let mut compressible = false;
    let mut files = 3usize;
    let mut layer_specs: Vec<String> = Vec::new();
    let mut manifest_annotations = Vec::new();

    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        // Accept both `--opt value` and `--opt=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match name {
            "--ref" => ref_name = non_empty("--ref", value(name)?)?,
            "--seed" => seed = parse_num("--seed", &value(name)?)?,
            "--platform" => platform = value(name)?,
            "--platforms" => {
                platforms = Some(
                    value(name)?
                        .split(',')
                        .map(str::to_owned)
                        .collect::<Vec<_>>(),
                )
            }
            "--layers" => count = Some(parse_num("--layers", &value(name)?)?),
            "--layer-size" => layer_size = Some(parse_size(&value(name)?)?),
            "--compression" => compression = parse_compression(&value(name)?)?,
            "--compressible" if inline.is_none() => compressible = true,
            "--files" => files = parse_num("--files", &value(name)?)?,
            "--layer" => layer_specs.push(value(name)?),
            "--annotation" => manifest_annotations.push(parse_kv("--annotation", &value(name)?)?),
            _ if name.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if dir.is_none() => dir = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg} (DIR already given)")),
        }
    }
    let dir = dir.ok_or("missing DIR")?;

    let mut layers = Vec::new();
    if layer_specs.is_empty() {
        for _ in 0..count.unwrap_or(1) {
            let mut spec = LayerSpec::new(layer_size.unwrap_or(1 << 20), compression);
            spec.compressible = compressible;
            spec.files = files;
            layers.push((spec, None));
        }
    } else {
        if count.is_some() || layer_size.is_some() {
            return Err("--layer cannot be combined with --layers or --layer-size".into());
        }
        for text in &layer_specs {
            layers.push(parse_layer(text, compression, compressible, files)?);
        }
    }
    for (spec, _) in &layers {
        if spec.size > 0 && spec.files == 0 {
            return Err("a layer with content needs --files of at least 1".into());
        }
    }
    Ok(Args {
        dir,
        ref_name,
        platforms,
        platform,
        seed,
        layers,
        manifest_annotations,
    })
}

/// `SIZE[,C][,compressible][,files=N][,seed=N][,platform=P][,annotation=K=V]...`
fn parse_layer(
    text: &str,
    compression: Compression,
    compressible: bool,
    files: usize,
) -> Result<(LayerSpec, Option<String>), String> {
    let mut parts = text.split(',');
    let size = parse_size(parts.next().unwrap_or_default())?;
    let mut spec = LayerSpec::new(size, compression);
    spec.compressible = compressible;
    spec.files = files;
    let mut platform = None;
    for part in parts {
        match part.split_once('=') {
            None if part == "compressible" => spec.compressible = true,
            None => spec.compression = parse_compression(part)?,
            Some(("files", n)) => spec.files = parse_num("files=", n)?,
            Some(("seed", n)) => spec.seed = Some(parse_num("seed=", n)?),
            Some(("platform", p)) => platform = Some(p.to_owned()),
            Some(("annotation", kv)) => spec.annotations.push(parse_kv("annotation=", kv)?),
            Some((key, _)) => return Err(format!("--layer {text}: unknown key {key}=")),
        }
    }
    Ok((spec, platform))
}

/// Turns parsed arguments into image specs (one per platform).
fn build_images(args: &Args) -> Result<Vec<ImageSpec>, String> {
    let platforms = match &args.platforms {
        Some(list) => list.clone(),
        None => vec![args.platform.clone()],
    };
    let mut images = Vec::new();
    for (i, p) in platforms.iter().enumerate() {
        let mut image = ImageSpec::for_platform(p, args.seed.wrapping_add(i as u64))
            .ok_or_else(|| format!("bad platform {p:?}: expected OS/ARCH or OS/ARCH/VARIANT"))?;
        image.layers = args
            .layers
            .iter()
            .filter(|(_, only)| only.as_ref().is_none_or(|only| only == p))
            .map(|(spec, _)| spec.clone())
            .collect();
        image.manifest_annotations = args.manifest_annotations.clone();
        images.push(image);
    }
    for only in args.layers.iter().filter_map(|(_, only)| only.as_ref()) {
        if !platforms.contains(only) {
            return Err(format!(
                "layer platform={only} is not among the image's platforms"
            ));
        }
    }
    Ok(images)
}

fn report(args: &Args, written: &Written) {
    println!(
        "{}: ref {} -> {} {} ({} bytes)",
        args.dir.display(),
        args.ref_name,
        written.tagged.media_type,
        written.tagged.digest,
        written.tagged.size
    );
    for image in &written.images {
        println!(
            "  {}: manifest {} ({} bytes), config {} ({} bytes)",
            image.platform,
            image.manifest.digest,
            image.manifest.size,
            image.config.digest,
            image.config.size
        );
        for (i, (layer, diff_id)) in image.layers.iter().zip(&image.diff_ids).enumerate() {
            println!(
                "    layer {i}: {} {} ({} bytes), diff_id {diff_id}",
                layer.media_type, layer.digest, layer.size
            );
        }
    }
}

fn non_empty(what: &str, v: String) -> Result<String, String> {
    if v.is_empty() {
        Err(format!("{what} must not be empty"))
    } else {
        Ok(v)
    }
}

fn parse_num<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{what}: {v:?} is not a valid number"))
}

fn parse_compression(v: &str) -> Result<Compression, String> {
    Compression::from_name(v)
        .ok_or_else(|| format!("unknown compression {v:?} (none, gzip, gzip-fast, zstd)"))
}

fn parse_kv(what: &str, v: &str) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((k, val)) if !k.is_empty() => Ok((k.to_owned(), val.to_owned())),
        _ => Err(format!("{what} expects KEY=VALUE, got {v:?}")),
    }
}

/// `123`, `64K`, `128M`, `1G`, also `KiB`/`MiB`/`GiB` and lower case; binary multiples.
fn parse_size(v: &str) -> Result<u64, String> {
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &v[digits.len()..];
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("size {v:?}: unknown unit {unit:?} (K, M, G)")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("size {v:?} is not a number with an optional K/M/G suffix"))?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {v:?} is too large"))
}
