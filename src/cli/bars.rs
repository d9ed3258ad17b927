//! Progress bars on stderr: one per blob being streamed and one for the whole run (bytes,
//! throughput, time left), drawn with `indicatif`. They implement the library's
//! [`Progress`] observer.
//!
//! `--progress auto` (the default) draws only when stderr is a terminal, and only once a run
//! has taken a moment, so that short runs do not flicker; `always` draws at once, even into a
//! file or pipe (with a terminal's control sequences, one bar per line); `never` and `-q`
//! draw nothing.
//! Bars never go to stdout, which carries results only, and they are cleared when the run
//! ends. Diagnostics printed while bars are drawn go through [`Bars::suspend`].

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::ProgressMode;
use layercrypt::progress::{BlobProgress, Item, Progress};

/// How long a run under `--progress auto` works before its bars appear.
const AUTO_DELAY: Duration = Duration::from_millis(800);

/// The bars of one run.
pub(super) struct Bars {
    mode: ProgressMode,
    multi: MultiProgress,
    total: ProgressBar,
    /// When the bars may appear (`auto` waits a moment).
    show_at: Instant,
    shown: AtomicBool,
}

impl Bars {
    /// The bars `mode` asks for, or `None` when nothing is to be drawn.
    pub(super) fn new(mode: ProgressMode, quiet: bool) -> Option<Bars> {
        let delay = match mode {
            _ if quiet => return None,
            ProgressMode::Never => return None,
            ProgressMode::Auto if !io::stderr().is_terminal() => return None,
            ProgressMode::Auto => AUTO_DELAY,
            ProgressMode::Always => Duration::ZERO,
        };
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::hidden());
        let total = multi.add(ProgressBar::new(0).with_style(style()));
        total.set_message("total");
        let bars = Bars {
            mode,
            multi,
            total,
            show_at: Instant::now() + delay,
            shown: AtomicBool::new(false),
        };
        bars.maybe_show();
        Some(bars)
    }

    /// Run `f` (which prints to stderr) with the bars out of the way.
    pub(super) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Show the bars once their moment has come.
    fn maybe_show(&self) {
        if self.shown.load(Ordering::Relaxed)
            || Instant::now() < self.show_at
            || self.shown.swap(true, Ordering::Relaxed)
        {
            return;
        }
        // indicatif's own stderr target hides itself when stderr is not a terminal.
        self.multi.set_draw_target(
            if self.mode == ProgressMode::Always && !io::stderr().is_terminal() {
                ProgressDrawTarget::term_like_with_hz(Box::new(Stderr::default()), 10)
            } else {
                ProgressDrawTarget::stderr_with_hz(10)
            },
        );
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// One line of at most the terminal's width (80 columns leave the bar 17): what, bar, bytes
/// done and in all, throughput, time left.
fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:<24!} [{wide_bar}] {bytes:>9}/{total_bytes:<9} {binary_bytes_per_sec:>11} {eta:>3}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// A short label for a bar: `layer 2 linux/amd64`, `copy 0123456789ab` (a blob by the start
/// of its digest).
fn label(item: Item<'_>) -> String {
    let short = |digest: &layercrypt::digest::Digest| {
        let s = digest.short();
        s.split_once(':')
            .map_or(s.clone(), |(_, hex)| hex.to_string())
    };
    match item {
        Item::Layer(at) => format!("layer {} {}", at.index, at.platform),
        Item::Copy(digest) => format!("copy {}", short(digest)),
        Item::Check(digest) => format!("check {}", short(digest)),
    }
}

impl Progress for Bars {
    fn expect(&self, _blobs: usize, bytes: u64) {
        self.total.inc_length(bytes);
    }

    fn start(&self, item: Item<'_>, total: u64) -> Box<dyn BlobProgress + '_> {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(total).with_style(style()));
        bar.set_message(label(item));
        Box::new(Bar { bars: self, bar })
    }
}

/// One blob's bar; removed when the blob is done or abandoned.
struct Bar<'a> {
    bars: &'a Bars,
    bar: ProgressBar,
}

impl BlobProgress for Bar<'_> {
    fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
        self.bars.total.inc(bytes);
        self.bars.maybe_show();
    }
}

impl Drop for Bar<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        self.bars.multi.remove(&self.bar);
    }
}

/// stderr that is not a terminal, drawn on as if it were one (`--progress always`): ANSI
/// control sequences, the width `COLUMNS` gives (80 without it), and a line feed after each
/// full line, where a terminal would wrap, so that a log shows one bar per line.
#[derive(Debug, Default)]
struct Stderr {
    /// Characters written on the current line.
    column: std::sync::atomic::AtomicUsize,
}

impl Stderr {
    fn write(&self, s: &str) -> io::Result<()> {
        io::stderr().lock().write_all(s.as_bytes())
    }

    /// Write text (no control sequences) and wrap after a full line.
    fn text(&self, s: &str) -> io::Result<()> {
        self.write(s)?;
        let column = self.column.fetch_add(s.chars().count(), Ordering::Relaxed);
        if column + s.chars().count() >= usize::from(self.width()) {
            self.column.store(0, Ordering::Relaxed);
            self.write("\n")?;
        }
        Ok(())
    }

    fn control(&self, n: usize, code: char) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}{code}"))
    }
}

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|&w| w > 0)
            .unwrap_or(80)
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.control(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.control(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.control(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.control(n, 'D')
    }

    fn write_line(&self, s: &str) -> io::Result<()> {
        self.column.store(0, Ordering::Relaxed);
        self.write(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> io::Result<()> {
        self.text(s)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.column.store(0, Ordering::Relaxed);
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}
