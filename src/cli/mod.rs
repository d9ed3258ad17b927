//! The command-line interface: argument definitions (which also generate `--help`, the man page
//! and shell completions), turning arguments into a library request, and printing results.
//!
//! Results go to stdout (a summary, or `--json`); warnings and errors go to stderr as
//! `warning: …` / `error: …` with a `hint: …` where a fix is likely. Exit status: 0 success,
//! 1 `verify` found a problem, 2 any error (nothing changed), 128 + the signal when SIGINT,
//! SIGTERM or SIGHUP stopped the run (`cli/signals.rs`). A closed stdout pipe ends the program
//! quietly.

mod bars;
mod batch;
mod by_recipient;
mod hint;
mod man;
mod registry;
mod rekey;
mod signals;
mod verify;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use layercrypt::engine::{self, Event, Outcome, Report, Request};
use layercrypt::error::Error;
use layercrypt::format::media_type::short_name;
use layercrypt::image::Platform;
use layercrypt::inspect::{self, InspectReport};
use layercrypt::keywrap::{DescribeContext, Environment, KeyRing, Registry};
use layercrypt::keywrap::{KeyOptions, KeySpec, load_key_ring};
use layercrypt::plan::{LayerSelector, Operation, OperationKind, Selection};
use layercrypt::store::ImageRef;

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: a check ran and found a problem (`verify`).
pub const EXIT_CHECK_FAILED: u8 = 1;
/// Exit status: an error that retrying will not help; nothing was changed.
pub const EXIT_ERROR: u8 = 2;
/// Exit status: a transient error (I/O, a full disk, a lock held by another run, a registry's
/// 429, 5xx or timeout); nothing was changed, and retrying may succeed.
pub const EXIT_TRANSIENT: u8 = 3;

// The optional cargo features of this build, for `--version`: `+name` when built in, `-name`
// when not.
#[cfg(feature = "pgp")]
macro_rules! pgp_feature {
    () => {
        "+pgp"
    };
}
#[cfg(not(feature = "pgp"))]
macro_rules! pgp_feature {
    () => {
        "-pgp"
    };
}
#[cfg(feature = "keyprovider-grpc")]
macro_rules! grpc_feature {
    () => {
        "+keyprovider-grpc"
    };
}
#[cfg(not(feature = "keyprovider-grpc"))]
macro_rules! grpc_feature {
    () => {
        "-keyprovider-grpc"
    };
}

#[cfg(feature = "registry")]
macro_rules! registry_feature {
    () => {
        "+registry"
    };
}
#[cfg(not(feature = "registry"))]
macro_rules! registry_feature {
    () => {
        "-registry"
    };
}

/// `-V`: the version and the optional features this build has (`+`) or lacks (`-`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    pgp_feature!(),
    " ",
    grpc_feature!(),
    " ",
    registry_feature!(),
    ")"
);

/// `--version`: the version, what each optional feature is, and which build this is (target,
/// OpenSSL and the C library, and how each is linked; from build.rs).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "\nfeatures: ",
    pgp_feature!(),
    " ",
    grpc_feature!(),
    " ",
    registry_feature!(),
    "\n  pgp               OpenPGP recipients and keys (sequoia-openpgp, LGPL-2.0-or-later)",
    "\n  keyprovider-grpc  key providers reached over gRPC (command providers always work)",
    "\n  registry          images in registries (docker://), from their manifests",
    "\nbuild: ",
    env!("LAYERCRYPT_BUILD"),
    "\nwire format: containers/ocicrypt (AES_256_CTR_HMAC_SHA256 layers)"
);

const AFTER_HELP: &str = "\
Image references:
  oci:PATH[:REF]             an OCI image layout directory (as `skopeo copy … oci:PATH:REF`
                             writes); REF selects the index.json entry named REF (default:
                             every image)
  oci-archive:PATH[:REF]     a tar of an OCI layout; read in place, rewritten by rename
  docker-archive:PATH[:REF]  a `docker save` tarball; REF is a repo:tag. As output: decrypted
                             images only, one platform each (encrypted output is refused)
  docker://HOST[:PORT]/REPO[:TAG|@DIGEST]
                             an image in a registry, read from its manifests alone (no tag: every
                             tag): inspect, verify, and rekey --add/--remove/--set in place or to
                             another tag. The network is used only for these references
  PATH                       a directory is an OCI layout; a file is detected by its content

Examples (each command's --help has more):
  skopeo copy docker://docker.io/library/alpine:3.20 oci:alpine:3.20
  layercrypt encrypt -r jwe:alice.pub.pem oci:alpine:3.20 oci:alpine-enc:3.20
  layercrypt inspect oci:alpine-enc:3.20
  layercrypt verify -k alice.pem --full oci:alpine-enc:3.20
  layercrypt decrypt -k alice.pem oci:alpine-enc:3.20 oci:alpine-plain:3.20

Environment:
  GNUPGHOME                    GnuPG home for pgp: recipients and keys (--gpg-homedir wins)
  OCICRYPT_KEYPROVIDER_CONFIG  key providers: a JSON file {\"key-providers\": {NAME: ...}}
  OCICRYPT_CONFIG              PKCS#11 module policy: a YAML file, or `internal`
  OCICRYPT_OAEP_HASHALG        PKCS#11 RSA-OAEP hash: sha256 (default) or sha1

Output: results on stdout; progress bars (on a terminal), warnings and errors on stderr.

Exit status: 0 success (verify: every check passed); 1 verify found a problem; 2 an error
that retrying will not help (bad usage, missing or malformed input, no usable key, a refused
request; nothing was changed); 3 a transient error (an I/O failure, a full disk, a lock held
by another run, a registry's 429, 5xx or timeout; nothing was changed, retrying may
succeed); 130, 143, 129 interrupted by SIGINT (Ctrl-C), SIGTERM, SIGHUP (the run's
temporaries removed; nothing was changed). In a batch (several images, --from-file) the most
severe wins, in the order 2, 3, 1, 0.";

const REKEY_HELP: &str = "\
Examples:
  layercrypt rekey -k alice.pem --add jwe:bob.pub.pem oci:app-enc              (in place)
  layercrypt rekey -k alice.pem --remove jwe:bob.pub.pem --add pgp:carol@example.com oci:app-enc
  layercrypt rekey -k alice.pem --remove 0x3631BE422BDA5120 oci:app-enc:v1 oci:app-enc2:v1
  layercrypt rekey -k alice.pem --set jwe:alice.pub.pem --set pkcs7:ops.crt oci:app-enc
  layercrypt rekey -k alice.pem --rotate --set jwe:alice.pub.pem oci:app-enc
  layercrypt rekey -k alice.pem --add jwe:bob.pub.pem --from-file images.txt

Without --rotate only the wrapped keys change: layer blobs stay byte-identical (same digests)
and no layer data is read; manifests and indexes get new digests. --remove drops recipient
entries without touching the others (a JWE entry that carries no key id, as Go writes them,
cannot be attributed: use --set then).

Removing a recipient is NOT revocation: the removed party may still hold the layer key, or a
copy of the old image, and the layer data is the same. Use --rotate --set to re-encrypt the
data under a fresh layer key for exactly the given recipients (digests change).

With --from-file (lines of SRC [DST]), --in-place or more than two images, every image named
is re-keyed in place and a failure in one does not stop the others (the exit status is the
most severe of the images': 2, 3, 1, 0). With exactly two, they are SRC and DST. --shard,
--json-lines and --journal split, stream and resume such runs (README: Many images).";

/// Encrypt, decrypt, re-key, inspect and verify OCI image layers offline, wire-compatible with
/// containers/ocicrypt (skopeo, podman, buildah, containerd imgcrypt, nerdctl).
#[derive(Debug, Parser)]
#[command(
    name = "layercrypt",
    version = VERSION,
    long_version = LONG_VERSION,
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Encrypt the layers of images for one or more recipients.
    #[command(after_help = "\
Examples:
  layercrypt encrypt -r jwe:alice.pub.pem oci:app:v1 oci:app-enc:v1
  layercrypt encrypt -r jwe:alice.pub.pem -r jwe:bob.pub.pem oci:app          (in place)
  layercrypt encrypt -r jwe:ops.pub.pem --platform linux/arm64 --layer -1 oci:app:v1
  layercrypt encrypt -r jwe:alice.pub.pem docker-archive:app.tar oci-archive:app-enc.tar:v1

Recipients are jwe:PUBLIC-KEY-FILE (RSA or EC P-256/P-384/P-521; PEM, DER or JWK).
Layers that are already encrypted are left as they are, and so are empty layers (0 bytes:
nothing to protect, and peers would not decrypt them).")]
    Encrypt(EncryptArgs),
    /// Decrypt the encrypted layers of images with private keys.
    #[command(after_help = "\
Examples:
  layercrypt decrypt -k alice.pem oci:app-enc:v1 oci:app:v1
  layercrypt decrypt -k alice.pem:file=/run/secrets/pw oci:app-enc          (in place)
  layercrypt decrypt -k alice.pem oci-archive:app-enc.tar:v1 docker-archive:app.tar:app:v1

A key is FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N or FILE:env=VAR. Plaintext is
published only after the layer's HMAC has been verified.")]
    Decrypt(DecryptArgs),
    /// Change who can open encrypted layers: add, remove or replace recipients, or rotate the
    /// layer key.
    #[command(after_help = REKEY_HELP)]
    Rekey(RekeyArgs),
    /// Show, per platform and layer, what is encrypted and for whom.
    #[command(after_help = "\
Examples:
  layercrypt inspect oci:app-enc:v1
  layercrypt inspect --json oci:app-enc | jq '.images[].manifests[].layers[].recipients'")]
    Inspect(InspectArgs),
    /// Check that the selected layers open with the given keys (and, with --full, are intact).
    #[command(after_help = verify::AFTER_HELP)]
    Verify(VerifyArgs),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  layercrypt completions bash > ~/.local/share/bash-completion/completions/layercrypt
  layercrypt completions zsh > ~/.zfunc/_layercrypt    (with fpath+=(~/.zfunc) in ~/.zshrc)
  layercrypt completions fish > ~/.config/fish/completions/layercrypt.fish
  layercrypt completions elvish >> ~/.config/elvish/rc.elv
  layercrypt completions powershell >> $PROFILE

The same scripts are in completions/ in the source tree.")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) on stdout: every command, its options and examples.
    #[command(after_help = "\
Examples:
  layercrypt man | man -l -
  layercrypt man > ~/.local/share/man/man1/layercrypt.1 && man layercrypt")]
    Man,
}

/// Shells for completion scripts.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

/// When to draw progress bars (`--progress`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Only when stderr is a terminal, and once the run has taken a moment.
    #[default]
    Auto,
    /// Always, on stderr, even when it is a file or a pipe.
    Always,
    /// Never.
    Never,
}

/// `--platform` and `--layer`.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    /// Only images for this platform, OS/ARCH[/VARIANT] (repeatable; default: all). Other
    /// platforms stay in the output untouched.
    #[arg(long = "platform", value_name = "OS/ARCH[/VARIANT]")]
    pub platforms: Vec<String>,
    /// Only this layer: an index (0 = bottom, negative counts from the top) or a digest
    /// (repeatable; default: all layers). An index out of range is an error.
    #[arg(
        long = "layer",
        value_name = "N|sha256:HEX",
        allow_hyphen_values = true
    )]
    pub layers: Vec<String>,
}

/// Options common to commands that write.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Print the plan (what would be encrypted, decrypted or kept, and why); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print a machine-readable report on stdout (old and new digest of every changed layer,
    /// manifest and index).
    #[arg(long)]
    pub json: bool,
    /// Worker threads (default: one per CPU core).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Print only errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Explain decisions: which key opened which layer, what was copied, why layers were kept.
    #[arg(short, long)]
    pub verbose: bool,
    /// Progress bars on stderr, per layer and in total: auto (only on a terminal), always,
    /// never. -q draws none.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// `--gpg-homedir`.
#[derive(Debug, Args)]
pub struct GpgArgs {
    /// GnuPG home for OpenPGP recipients and keys (default: $GNUPGHOME, else ~/.gnupg).
    #[arg(long = "gpg-homedir", value_name = "DIR")]
    pub gpg_homedir: Option<PathBuf>,
}

/// `encrypt` arguments.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// A recipient (repeatable; schemes can be mixed): jwe:PUBLIC-KEY-FILE,
    /// pgp:EMAIL|NAME|KEYID|FINGERPRINT, pkcs7:CERTIFICATE-FILE, pkcs11:YAML-OR-PUBLIC-KEY-FILE,
    /// provider:NAME[:ARGS].
    #[arg(
        short = 'r',
        long = "recipient",
        value_name = "RECIPIENT",
        required = true
    )]
    pub recipients: Vec<String>,
    /// The image SRC was built on (any image reference, docker:// included: only its
    /// manifests and configs are read). The bottom layers SRC shares with it, at the same
    /// position with the same digest or the same diff_id, stay plain, so registries keep
    /// sharing them. Without a digest in REF, an image's
    /// org.opencontainers.image.base.digest annotation chooses among REF's images; else the
    /// one of its platform matching most layers. An image whose bottom layers are not the
    /// base's is refused.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// OpenPGP settings.
    #[command(flatten)]
    pub gpg: GpgArgs,
    /// Platform and layer selection.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Options common to commands that write.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Registry options (for a docker:// --base).
    #[command(flatten)]
    pub registry: registry::RegistryArgs,
    /// Many images.
    #[command(flatten)]
    pub batch: batch::BatchArgs,
    /// Source image.
    #[arg(value_name = "SRC", required_unless_present = "from_file")]
    pub source: Option<String>,
    /// Destination (default: rewrite SRC in place).
    #[arg(value_name = "DST")]
    pub destination: Option<String>,
}

/// Key arguments.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// A key (repeatable): FILE, FILE:pass=PASSWORD, FILE:file=PATH, FILE:fd=N, FILE:env=VAR,
    /// or provider:NAME[:ARGS]. FILE is a private key (PEM, DER, JWK), an X.509 certificate
    /// (locates PKCS#7 entries), an OpenPGP secret keyring, or a PKCS#11 YAML key file.
    #[arg(short = 'k', long = "key", value_name = "KEY")]
    pub keys: Vec<String>,
    /// Use every key file below DIR (repeatable; symbolic links followed, each file once;
    /// what is no key is skipped, what cannot be used is skipped with a warning).
    #[arg(long = "key-dir", value_name = "DIR")]
    pub key_dirs: Vec<PathBuf>,
    /// A certificate that locates a PKCS#7 entry: pkcs7:CERT-FILE (repeatable).
    #[arg(long = "dec-recipient", value_name = "pkcs7:CERT")]
    pub dec_recipients: Vec<String>,
    /// Passphrase for encrypted keys that name no passphrase source of their own (default:
    /// ask on the terminal).
    #[arg(long = "passphrase-file", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// OpenPGP settings.
    #[command(flatten)]
    pub gpg: GpgArgs,
}

/// `decrypt` arguments.
#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// Decryption keys.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Platform and layer selection.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Options common to commands that write.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Many images.
    #[command(flatten)]
    pub batch: batch::BatchArgs,
    /// Source image.
    #[arg(value_name = "SRC", required_unless_present = "from_file")]
    pub source: Option<String>,
    /// Destination (default: rewrite SRC in place).
    #[arg(value_name = "DST")]
    pub destination: Option<String>,
}

/// `rekey` arguments.
#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// Keys that open the layers.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Wrap the layer key for one more recipient, as for `encrypt -r` (repeatable). One that a
    /// layer already has is skipped with a warning.
    #[arg(long = "add", value_name = "RECIPIENT")]
    pub add: Vec<String>,
    /// Drop a recipient (repeatable): the recipient string used with `-r`, an OpenPGP key id or
    /// fingerprint, a JWE kid, pkcs7:CERT, or provider:NAME. Not revocation: see below.
    #[arg(long = "remove", value_name = "RECIPIENT-OR-ID")]
    pub remove: Vec<String>,
    /// Make these the only recipients (repeatable).
    #[arg(long = "set", value_name = "RECIPIENT", conflicts_with_all = ["add", "remove"])]
    pub set: Vec<String>,
    /// Re-encrypt the layer data under a fresh layer key for the --set recipients (digests
    /// change).
    #[arg(long)]
    pub rotate: bool,
    /// Re-key every image named in place, even when there are exactly two.
    #[arg(long = "in-place")]
    pub in_place: bool,
    /// docker:// images: delete the manifests the re-key replaced, by digest, where the
    /// registry allows it (whoever can pull an old manifest can read its wrapped keys).
    #[arg(long = "delete-old")]
    pub delete_old: bool,
    /// Registry options.
    #[command(flatten)]
    pub registry: registry::RegistryArgs,
    /// Platform and layer selection.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Options common to commands that write.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Many images.
    #[command(flatten)]
    pub batch: batch::BatchArgs,
    /// SRC [DST], or several images to re-key in place.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `inspect` arguments.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print JSON (schema in the README) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Turn the view around: for every recipient in the images given, the images, platforms
    /// and layers it can open (for finding what a leaked key opens).
    #[arg(long = "by-recipient")]
    pub by_recipient: bool,
    /// With --by-recipient: only this recipient (a JWE kid, an OpenPGP key id, provider:NAME,
    /// or the name --by-recipient shows; repeatable). The table becomes the list of images it
    /// opens, one per line, which --from-file - reads.
    #[arg(long = "recipient", value_name = "ID", requires = "by_recipient")]
    pub recipients: Vec<String>,
    /// A certificate whose subject names matching PKCS#7 recipients: pkcs7:CERT-FILE
    /// (repeatable).
    #[arg(long = "dec-recipient", value_name = "pkcs7:CERT")]
    pub dec_recipients: Vec<String>,
    /// OpenPGP settings (user ids of key ids are looked up there).
    #[command(flatten)]
    pub gpg: GpgArgs,
    /// Platform and layer selection.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Registry options.
    #[command(flatten)]
    pub registry: registry::RegistryArgs,
    /// Many images.
    #[command(flatten)]
    pub batch: batch::BatchArgs,
    /// Image to inspect.
    #[arg(value_name = "SRC", required_unless_present = "from_file")]
    pub source: Option<String>,
}

/// `verify` arguments.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("key_options").multiple(true)
    .args(["keys", "key_dirs", "dec_recipients", "gpg_homedir"])))]
pub struct VerifyArgs {
    /// Keys to unwrap with (none given: check structure only).
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Also decrypt every selected layer to nowhere and check the HMAC, the blob's digest and
    /// size, the recorded plaintext digest and the config's diff_ids (needs a key). For a
    /// docker:// image this downloads every selected layer (to memory, never to disk).
    #[arg(long, requires = "key_options")]
    pub full: bool,
    /// Fail when a selected layer is a plain filesystem layer (foreign and non-filesystem
    /// layers are skipped, not failed; --base exempts the layers of a public base image).
    #[arg(long)]
    pub require_encrypted: bool,
    /// The image SRC was built on: the bottom layers it shares with it (same position and
    /// digest, or same diff_id) may be plain. An image whose bottom layers are not the base's
    /// fails. As for encrypt --base.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// Platform and layer selection.
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Print JSON (schema in the README) instead of one line per layer.
    #[arg(long)]
    pub json: bool,
    /// Worker threads for --full (default: one per CPU core).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Print only the layers that failed.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also say which key opened each layer and which checks passed.
    #[arg(short, long)]
    pub verbose: bool,
    /// Progress bars on stderr while --full reads layers: auto (only on a terminal), always,
    /// never. -q draws none.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Registry options.
    #[command(flatten)]
    pub registry: registry::RegistryArgs,
    /// Many images.
    #[command(flatten)]
    pub batch: batch::BatchArgs,
    /// Image to verify.
    #[arg(value_name = "SRC", required_unless_present = "from_file")]
    pub source: Option<String>,
}

impl KeyArgs {
    /// Whether any key option was given (`verify` checks structure only without one).
    pub fn any(&self) -> bool {
        !self.keys.is_empty()
            || !self.key_dirs.is_empty()
            || !self.dec_recipients.is_empty()
            || self.gpg.gpg_homedir.is_some()
    }
}

/// A failure to report: the library error, or a problem with the arguments themselves.
#[derive(Debug)]
enum Failure {
    Lib(Box<Error>),
    Stdout(io::Error),
    /// Arguments that do not fit together: the message and a hint.
    Usage(String, &'static str),
    /// The journal of a batch cannot be used: the message, and whether retrying may help
    /// (another run holds it).
    Journal(String, bool),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Lib(Box::new(e))
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Stdout(e)
    }
}

use rekey::rekey;

/// Set in the environment of a run that was started again with the PKCS#11 module
/// environment, so that it never starts itself a second time.
const MODULE_ENV_MARKER: &str = "LAYERCRYPT_PKCS11_MODULE_ENV";

/// Parse the process arguments and run; returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = signals::install() {
        // Runs still work; only stopping them cleanly does not.
        diagnostic(
            "warning",
            &format!("cannot receive SIGINT, SIGTERM and SIGHUP: {e}"),
        );
    }
    match with_module_environment(&cli) {
        Ok(Some(code)) => return code,
        Ok(None) => {}
        Err(e) => return report_result(Err(e)),
    }
    report_result(run(cli))
}

/// The exit status of a finished run. A run that failed after a signal stopped it is reported
/// as interrupted, whatever step noticed the stop.
fn report_result(result: Result<u8, Failure>) -> ExitCode {
    let failure = match result {
        Ok(code) => return ExitCode::from(code),
        Err(failure) => failure,
    };
    // A passphrase prompt answers Ctrl-C itself, raising SIGINT, and may return before the
    // signal thread has seen it.
    let signal = signals::received().or_else(|| {
        matches!(&failure, Failure::Lib(e) if e.is_interrupted()).then_some(signals::SIGINT)
    });
    match signal {
        Some(signal) => {
            signals::report_interrupted();
            ExitCode::from(signals::exit_status(signal))
        }
        None => report(failure),
    }
}

/// Print a diagnostic line (`error`, `hint`, `warning`, `note`) on stderr. Text that came from
/// the input (reference names, archive entries, annotation values) may hold control
/// characters; they are shown escaped so a hostile file cannot drive the terminal.
pub(crate) fn diagnostic(kind: &str, text: &str) {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    eprintln!("{kind}: {shown}");
}

/// Print a failure as `error:` (and `hint:`) and give its exit status.
fn report(failure: Failure) -> ExitCode {
    match failure {
        Failure::Stdout(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_OK),
        Failure::Stdout(e) => {
            diagnostic("error", &format!("writing to stdout: {e}"));
            ExitCode::from(EXIT_ERROR)
        }
        Failure::Lib(e) => {
            diagnostic("error", &e.to_string());
            if let Some(hint) = hint::hint(&e) {
                diagnostic("hint", &hint);
            }
            ExitCode::from(exit_status_of(&e))
        }
        Failure::Usage(message, hint) => {
            diagnostic("error", &message);
            diagnostic("hint", hint);
            ExitCode::from(EXIT_ERROR)
        }
        Failure::Journal(message, transient) => {
            diagnostic("error", &message);
            ExitCode::from(if transient {
                EXIT_TRANSIENT
            } else {
                EXIT_ERROR
            })
        }
    }
}

/// The exit status for a failed run: 3 when retrying may succeed, else 2.
pub(crate) fn exit_status_of(error: &Error) -> u8 {
    if error.is_transient() {
        EXIT_TRANSIENT
    } else {
        EXIT_ERROR
    }
}

/// PKCS#11 modules read their configuration from the process environment (a key file's
/// `module.env`, such as `SOFTHSM2_CONF`). ocicrypt sets those variables process-wide around
/// each call; doing so while worker threads run is unsound, so instead, when the key and
/// recipient files ask for variables this process lacks, the run is started again with them
/// set, and its exit status is returned.
fn with_module_environment(cli: &Cli) -> Result<Option<ExitCode>, Failure> {
    use layercrypt::keywrap::pkcs11::{module_environment, unmet_environment};
    let files: Vec<PathBuf> = match &cli.command {
        Command::Encrypt(args) => args
            .recipients
            .iter()
            .filter_map(|r| r.strip_prefix("pkcs11:").map(PathBuf::from))
            .collect(),
        Command::Decrypt(DecryptArgs { keys, .. }) | Command::Verify(VerifyArgs { keys, .. }) => {
            key_files(keys)
        }
        Command::Rekey(args) => {
            let mut files = key_files(&args.keys);
            files.extend(
                args.add
                    .iter()
                    .chain(&args.set)
                    .filter_map(|r| r.strip_prefix("pkcs11:").map(PathBuf::from)),
            );
            files
        }
        _ => Vec::new(),
    };
    if files.is_empty() || std::env::var_os(MODULE_ENV_MARKER).is_some() {
        return Ok(None);
    }
    let refs: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
    let required = module_environment(&refs).map_err(Error::from)?;
    let unmet = unmet_environment(&required);
    if unmet.is_empty() {
        return Ok(None);
    }
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(unmet)
        .env(MODULE_ENV_MARKER, "1")
        .spawn()?;
    // The child does the work and answers signals; this process only waits for it.
    let forwarding = signals::Forwarding::to(child.id());
    let status = child.wait()?;
    drop(forwarding);
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(i32::from(EXIT_ERROR));
    Ok(Some(ExitCode::from(
        u8::try_from(code).unwrap_or(EXIT_ERROR),
    )))
}

/// The key files named by key arguments (for the PKCS#11 module environment).
fn key_files(args: &KeyArgs) -> Vec<PathBuf> {
    let specs: Vec<KeySpec> = args
        .keys
        .iter()
        .filter_map(|k| KeySpec::parse(k).ok())
        .collect();
    // Unreadable directories are reported by the normal key loading.
    layercrypt::keywrap::key_files(&specs, &args.key_dirs).unwrap_or_default()
}

fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Encrypt(args) => {
            let registry = registry(&args.gpg, args.common.quiet)?;
            let recipients = registry
                .load_recipients(&args.recipients)
                .map_err(Error::from)?;
            let operation = Operation::Encrypt { recipients };
            let images = (args.source.as_deref(), args.destination.as_deref());
            let base = base(args.base.as_deref(), &args.registry, &[])?;
            run_images(
                registry,
                operation,
                images,
                Selection {
                    base,
                    ..selection(&args.selection)?
                },
                &args.batch,
                &args.common,
            )
        }
        Command::Decrypt(args) => {
            let registry = registry(&args.keys.gpg, args.common.quiet)?;
            let keys = key_ring(
                &args.keys,
                &registry,
                args.common.quiet,
                args.common.verbose,
            )?;
            let operation = Operation::Decrypt { keys };
            let images = (args.source.as_deref(), args.destination.as_deref());
            run_images(
                registry,
                operation,
                images,
                selection(&args.selection)?,
                &args.batch,
                &args.common,
            )
        }
        Command::Rekey(args) => rekey(args),
        Command::Inspect(args) => {
            let registry = registry(&args.gpg, args.json)?;
            let ring = load_key_ring(&[], &[], &args.dec_recipients, &KeyOptions::default())
                .map_err(Error::from)?
                .ring;
            let context = DescribeContext {
                certificates: ring
                    .certificates
                    .into_iter()
                    .map(|c| c.certificate)
                    .collect(),
                gpg_homedir: Environment::from_process(args.gpg.gpg_homedir.clone()).gpg_homedir,
                use_gpg: true,
            };
            let items = items(args.source.as_deref(), None, &args.batch)?;
            let refs = items
                .iter()
                .map(|i| parse_ref(&i.source))
                .collect::<Result<Vec<_>, _>>()?;
            let access = args
                .registry
                .access(&refs.iter().collect::<Vec<_>>(), false)?;
            let selection = selection(&args.selection)?;
            let inspect_one = |item: &batch::Item| {
                let source = parse_ref(&item.source)?.with_access(&access);
                inspect::inspect(&source, &selection, &registry, &context)
            };
            if !args.batch.any() && !args.by_recipient {
                let report = inspect_one(&items[0])?;
                let mut out = io::stdout().lock();
                if args.json {
                    serde_json::to_writer_pretty(&mut out, &report).map_err(io::Error::from)?;
                    writeln!(out)?;
                } else {
                    print_inspect(&mut out, &report)?;
                }
                return Ok(EXIT_OK);
            }
            let output = batch::Output {
                json: args.json,
                quiet: false,
                threads: batch_threads(&items, None),
            };
            if args.by_recipient {
                // Every image's report first (the view needs them all), then the view.
                let mut reports = Vec::with_capacity(items.len());
                let mut code = EXIT_OK;
                for item in &items {
                    match inspect_one(item) {
                        Ok(report) => reports.push((item.source.clone(), report)),
                        Err(e) => {
                            diagnostic("error", &format!("{}: {e}", item.source));
                            if let Some(hint) = hint::hint(&e) {
                                diagnostic("hint", &hint);
                            }
                            let c = exit_status_of(&e);
                            if code != EXIT_ERROR {
                                code = c;
                            }
                        }
                    }
                }
                by_recipient::print(&reports, &args.recipients, args.json, args.batch.json_lines)?;
                return Ok(code);
            }
            let human = !args.json && !args.batch.json_lines;
            let (code, _) =
                batch::run("inspect", items, &args.batch, &output, &|item, printing| {
                    let report = inspect_one(item)?;
                    if human {
                        let _line = printing.lock().unwrap_or_else(|p| p.into_inner());
                        let _ = print_inspect(&mut io::stdout().lock(), &report);
                    }
                    Ok(batch::Done {
                        status: batch::Status::Unchanged,
                        report: serde_json::to_value(&report).unwrap_or_default(),
                        digests: None,
                    })
                })?;
            Ok(code)
        }
        Command::Verify(args) => verify::run(args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            use clap_complete::{Shell as S, generate};
            let shell = match shell {
                Shell::Bash => S::Bash,
                Shell::Zsh => S::Zsh,
                Shell::Fish => S::Fish,
                Shell::Elvish => S::Elvish,
                Shell::Powershell => S::PowerShell,
            };
            // Into memory first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            generate(shell, &mut cmd, "layercrypt", &mut script);
            io::stdout().lock().write_all(&script)?;
            Ok(EXIT_OK)
        }
        Command::Man => {
            man::render(&mut io::stdout().lock())?;
            Ok(EXIT_OK)
        }
    }
}

/// The schemes of this run; configuration warnings go to stderr unless `quiet`.
fn registry(gpg: &GpgArgs, quiet: bool) -> Result<Registry, Error> {
    let registry = Registry::new(&Environment::from_process(gpg.gpg_homedir.clone()))?;
    if !quiet {
        for w in registry.warnings() {
            diagnostic("warning", w);
        }
    }
    Ok(registry)
}

/// The keys of `decrypt`, `rekey`, `verify` (every command that unwraps): `-k`, `--key-dir`,
/// `--dec-recipient`, passphrases; with no key file at all, GnuPG is asked for OpenPGP keys, as
/// ocicrypt's tools do. Files of a key directory that are no key are listed as notes when
/// verbose; those that could not be used are warnings unless quiet. A `-k provider:NAME` that
/// `registry` has no provider for is refused: it could open nothing.
fn key_ring(
    args: &KeyArgs,
    registry: &Registry,
    quiet: bool,
    verbose: bool,
) -> Result<KeyRing, Error> {
    let specs = args
        .keys
        .iter()
        .map(|k| KeySpec::parse(k))
        .collect::<Result<Vec<_>, _>>()?;
    for spec in &specs {
        if let KeySpec::Provider { name, .. } = spec
            && registry.get(&format!("provider.{name}")).is_none()
        {
            return Err(Error::UnknownKeyProvider { name: name.clone() });
        }
    }
    let options = KeyOptions {
        passphrase_file: args.passphrase_file.clone(),
        prompt: interactive(),
    };
    let loaded = load_key_ring(&specs, &args.key_dirs, &args.dec_recipients, &options)?;
    if !quiet {
        for w in &loaded.warnings {
            diagnostic("warning", &format!("{w}; skipped"));
        }
    }
    let (mut keys, skipped) = (loaded.ring, loaded.skipped);
    // As ocicrypt's tools do: with no key at all, ask GnuPG for OpenPGP keys.
    keys.use_gpg = specs.iter().all(|s| matches!(s, KeySpec::Provider { .. }))
        && args.key_dirs.is_empty()
        && args.dec_recipients.is_empty();
    keys.gpg_passphrase = options.fallback_passphrase();
    if verbose {
        for s in skipped {
            diagnostic("note", &s);
        }
    }
    Ok(keys)
}

/// Whether passphrases may be asked for on the terminal.
fn interactive() -> bool {
    use std::io::IsTerminal;
    io::stdin().is_terminal() && io::stderr().is_terminal()
}

fn parse_ref(text: &str) -> Result<ImageRef, Error> {
    ImageRef::parse(text).map_err(|reason| Error::Reference {
        reference: text.to_string(),
        reason,
    })
}

fn selection(args: &SelectionArgs) -> Result<Selection, Error> {
    let platforms = args
        .platforms
        .iter()
        .map(|p| Platform::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| Error::Selection {
            image: "--platform".into(),
            reason,
        })?;
    let layers = args
        .layers
        .iter()
        .map(|l| LayerSelector::parse(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| Error::Selection {
            image: "--layer".into(),
            reason,
        })?;
    Ok(Selection {
        platforms,
        layers,
        base: None,
    })
}

/// The base image `--base` names, loaded (its manifests and configs only) once for every
/// image of the run.
/// `--creds` and `--creds-file` are for the registry of the images worked on (`others`):
/// a base in another registry gets only what the auth files hold for it.
fn base(
    reference: Option<&str>,
    registry_args: &registry::RegistryArgs,
    others: &[ImageRef],
) -> Result<Option<std::sync::Arc<layercrypt::plan::base::Base>>, Failure> {
    let Some(reference) = reference else {
        return Ok(None);
    };
    let image = parse_ref(reference)?;
    let elsewhere = others.iter().any(|r| match (r, &image) {
        (ImageRef::Registry { reference: a, .. }, ImageRef::Registry { reference: b, .. }) => {
            a.registry != b.registry
        }
        _ => false,
    });
    let access = if elsewhere {
        registry_args.access_from_files()
    } else {
        registry_args.access(&[&image], false)?
    };
    let base = layercrypt::source::load_base(&image.with_access(&access))?;
    Ok(Some(std::sync::Arc::new(base)))
}

/// `encrypt` or `decrypt` of the images named (SRC [DST], then `--from-file`).
fn run_images(
    registry: Registry,
    operation: Operation,
    (source, destination): (Option<&str>, Option<&str>),
    selection: Selection,
    batch: &batch::BatchArgs,
    common: &CommonArgs,
) -> Result<u8, Failure> {
    let items = items(source, destination, batch)?;
    let request = Request {
        registry,
        source: parse_ref(&items[0].source)?,
        destination: items[0].destination.as_deref().map(parse_ref).transpose()?,
        selection,
        operation,
        jobs: common.jobs.map(usize::from),
        dry_run: common.dry_run,
    };
    engine_items(&request, items, batch, common, &Default::default())
}

/// The images a command names: SRC [DST] from the command line, then those of `--from-file`.
fn items(
    source: Option<&str>,
    destination: Option<&str>,
    batch: &batch::BatchArgs,
) -> Result<Vec<batch::Item>, Failure> {
    let mut items: Vec<batch::Item> = source
        .map(|s| batch::Item {
            source: s.to_string(),
            destination: destination.map(str::to_string),
        })
        .into_iter()
        .collect();
    if let Some(list) = &batch.from_file {
        items.extend(batch::read_list(list, &|r| ImageRef::parse(r).map(|_| ()))?);
    }
    if items.is_empty() {
        return Err(Failure::Usage(
            "no image to work on".into(),
            "name SRC [DST], or a list with --from-file LIST",
        ));
    }
    Ok(items)
}

/// How many images of a batch run at once: registry images `-j` at a time (each is a few
/// small requests, bound by latency); images on disk one after another, each with `-j`
/// workers.
fn batch_threads(items: &[batch::Item], jobs: Option<u16>) -> usize {
    if items.iter().all(|i| i.source.starts_with("docker://")) {
        jobs.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .max(4)
        })
    } else {
        1
    }
}

/// Run an engine request over `items`: one image as before, or a batch when there are several
/// or a batch option asks for it. Returns the exit status.
fn engine_items(
    request: &Request,
    items: Vec<batch::Item>,
    batch: &batch::BatchArgs,
    common: &CommonArgs,
    access: &std::sync::Arc<layercrypt::store::registry::Access>,
) -> Result<u8, Failure> {
    if items.len() == 1 && !batch.any() {
        let report = run_request(request, common)?;
        print_report(&report, common)?;
        return Ok(EXIT_OK);
    }
    engine_batch(request, items, batch, common, access).map(|(code, _)| code)
}

/// [`engine_items`] as a batch; also returns each image's JSON line.
fn engine_batch(
    request: &Request,
    items: Vec<batch::Item>,
    batch: &batch::BatchArgs,
    common: &CommonArgs,
    access: &std::sync::Arc<layercrypt::store::registry::Access>,
) -> Result<(u8, Vec<serde_json::Value>), Failure> {
    let threads = batch_threads(&items, common.jobs);
    let output = batch::Output {
        json: common.json,
        quiet: common.quiet,
        threads,
    };
    let human = !common.json && !batch.json_lines;
    let command = request.operation.kind().name();
    batch::run(command, items, batch, &output, &|item, printing| {
        let source = parse_ref(&item.source)?.with_access(access);
        let destination = item
            .destination
            .as_deref()
            .map(parse_ref)
            .transpose()?
            .map(|d| d.with_access(access));
        let report = run_request_on(request, &source, destination.as_ref(), common, threads == 1)?;
        if human {
            let _line = printing.lock().unwrap_or_else(|p| p.into_inner());
            let _ = print_report(&report, common);
        }
        let changed = report.images.iter().any(|i| i.old_digest != i.new_digest)
            || !report.removed_blobs.is_empty() && !report.dry_run;
        let digests = match report.images.as_slice() {
            [one] => Some((one.old_digest.to_string(), one.new_digest.to_string())),
            _ => None,
        };
        Ok(batch::Done {
            status: if changed {
                batch::Status::Changed
            } else {
                batch::Status::Unchanged
            },
            report: serde_json::to_value(&report).unwrap_or_default(),
            digests,
        })
    })
}

/// Run a request, with warnings and `-v` notes on stderr as they come, and progress bars as
/// `--progress` asks.
fn run_request(request: &Request, common: &CommonArgs) -> Result<Report, Error> {
    run_request_on(
        request,
        &request.source,
        request.destination.as_ref(),
        common,
        true,
    )
}

/// [`run_request`] on another source and destination; `bars`: whether progress bars may be
/// drawn (not while other images of a batch run beside it).
fn run_request_on(
    request: &Request,
    source: &ImageRef,
    destination: Option<&ImageRef>,
    common: &CommonArgs,
    bars: bool,
) -> Result<Report, Error> {
    let quiet = common.quiet;
    let verbose = common.verbose;
    let bars = if request.dry_run || !bars {
        None
    } else {
        bars::Bars::new(common.progress, quiet)
    };
    let print = |kind: &str, text: &str| match &bars {
        Some(b) => b.suspend(|| diagnostic(kind, text)),
        None => diagnostic(kind, text),
    };
    let events = |event: Event| match event {
        Event::Warning(w) if !quiet => print("warning", &w),
        Event::Detail(d) if verbose => print("note", &d),
        _ => {}
    };
    let outcome = match &bars {
        Some(b) => engine::run_on(request, source, destination, &events, b),
        None => engine::run_on(
            request,
            source,
            destination,
            &events,
            &layercrypt::progress::Silent,
        ),
    };
    Ok(match outcome? {
        Outcome::Planned(_, report) | Outcome::Done(report) => report,
    })
}

/// Print a run's report as `--json`, `--dry-run`, `-q` and `-v` ask.
fn print_report(report: &Report, common: &CommonArgs) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    if common.json {
        serde_json::to_writer_pretty(&mut out, report).map_err(io::Error::from)?;
        writeln!(out)?;
    } else if common.dry_run {
        print_plan(&mut out, report)?;
    } else if !common.quiet {
        print_summary(&mut out, report, common.verbose)?;
    }
    Ok(())
}

fn past_tense(operation: OperationKind) -> &'static str {
    match operation {
        OperationKind::Encrypt => "encrypted",
        OperationKind::Decrypt => "decrypted",
        OperationKind::Rekey => "re-keyed",
    }
}

fn print_plan(out: &mut impl Write, report: &Report) -> io::Result<()> {
    writeln!(
        out,
        "plan: {} {} -> {} (dry run, nothing is written)",
        report.operation, report.source, report.destination
    )?;
    for image in &report.images {
        for m in &image.manifests {
            writeln!(
                out,
                "{} ({}) manifest {}",
                image.name,
                m.platform,
                m.old.digest.short()
            )?;
            for l in &m.layers {
                let what = match (l.reason, &l.note) {
                    (Some(r), _) => format!("keep ({r})"),
                    (None, Some(n)) => format!("{} ({n})", l.action),
                    (None, None) => l.action.to_string(),
                };
                writeln!(
                    out,
                    "  layer {:>3}  {}  {:>12}  {}  {}",
                    l.index,
                    l.old.digest.short(),
                    l.old.size,
                    l.old.media_type,
                    what
                )?;
            }
        }
    }
    Ok(())
}

fn print_summary(out: &mut impl Write, report: &Report, verbose: bool) -> io::Result<()> {
    let done = past_tense(report.operation);
    for image in &report.images {
        for m in &image.manifests {
            let changed: Vec<String> = m
                .layers
                .iter()
                .filter(|l| l.new.is_some())
                .map(|l| l.index.to_string())
                .collect();
            if changed.is_empty() {
                if verbose {
                    writeln!(
                        out,
                        "{} ({}): nothing to {}",
                        image.name, m.platform, report.operation
                    )?;
                }
                continue;
            }
            writeln!(
                out,
                "{} ({}): {done} layer{} {}; manifest {} -> {}",
                image.name,
                m.platform,
                if changed.len() == 1 { "" } else { "s" },
                changed.join(", "),
                m.old.digest.short(),
                m.new.digest.short()
            )?;
            if verbose {
                for l in m.layers.iter().filter(|l| l.new.is_some()) {
                    if let Some(n) = &l.note {
                        writeln!(out, "  layer {} {}: {n}", l.index, l.action)?;
                    }
                }
                for l in m.layers.iter().filter(|l| l.new.is_none()) {
                    if let Some(r) = l.reason {
                        writeln!(out, "  layer {} kept: {r}", l.index)?;
                    }
                }
            }
        }
    }
    let n = report.changed_layers();
    if n == 0 {
        writeln!(
            out,
            "nothing to {}: no selected layer needed it",
            report.operation
        )?;
    } else {
        writeln!(
            out,
            "{done} {n} layer{} of {} image{} into {}",
            if n == 1 { "" } else { "s" },
            report.images.len(),
            if report.images.len() == 1 { "" } else { "s" },
            report.destination
        )?;
        writeln!(
            out,
            "note: manifest digests changed; signatures over the old digests no longer apply"
        )?;
        if report.operation == OperationKind::Rekey
            && report
                .images
                .iter()
                .flat_map(|i| &i.manifests)
                .flat_map(|m| &m.layers)
                .filter(|l| l.action == "rewrap")
                .filter_map(|l| l.note.as_deref())
                .any(|n| n.contains("remove ") || n.starts_with("replace "))
        {
            writeln!(
                out,
                "note: removing a recipient is not revocation: the layer data was not re-encrypted, and whoever could open it before may still hold its layer key (use --rotate --set to revoke)"
            )?;
        }
    }
    if !report.removed_blobs.is_empty() && report.destination.starts_with("docker://") {
        writeln!(
            out,
            "deleted {} replaced manifest{} from the registry",
            report.removed_blobs.len(),
            if report.removed_blobs.len() == 1 {
                ""
            } else {
                "s"
            }
        )?;
    } else if !report.removed_blobs.is_empty() {
        writeln!(
            out,
            "removed {} blob{} no longer referenced by the layout",
            report.removed_blobs.len(),
            if report.removed_blobs.len() == 1 {
                ""
            } else {
                "s"
            }
        )?;
    }
    Ok(())
}

fn print_inspect(out: &mut impl Write, report: &InspectReport) -> io::Result<()> {
    for (i, image) in report.images.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{}  {} {}",
            image.name,
            image.media_type,
            image.digest.short()
        )?;
        let mut rows = vec![[
            "PLATFORM".to_string(),
            "#".into(),
            "DIGEST".into(),
            "SIZE".into(),
            "TYPE".into(),
            "ENCRYPTION".into(),
            "RECIPIENTS".into(),
        ]];
        for m in &image.manifests {
            for l in &m.layers {
                let encryption = if l.encrypted {
                    if l.schemes.is_empty() {
                        "?".to_string()
                    } else {
                        l.schemes.join(",")
                    }
                } else {
                    "-".to_string()
                };
                let mut recipients: Vec<String> =
                    l.recipients.iter().map(ToString::to_string).collect();
                recipients.extend(l.problems.iter().map(|p| format!("({p})")));
                rows.push([
                    m.platform.clone(),
                    l.index.to_string(),
                    l.digest.short(),
                    l.size.to_string(),
                    short_name(&l.media_type).to_string(),
                    encryption,
                    recipients.join(", "),
                ]);
            }
        }
        let widths: Vec<usize> = (0..7)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let line = format!(
                "  {:<w0$}  {:>w1$}  {:<w2$}  {:>w3$}  {:<w4$}  {:<w5$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4],
                w5 = widths[5],
            );
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

/// `--json` reports use `serde_json::Error`; make it an I/O error for the stdout path.
impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Self {
        Failure::Stdout(io::Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
