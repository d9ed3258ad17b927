//! `layercrypt man`: one manual page, layercrypt(1), generated from the same clap definition
//! as `--help`: the command's own sections, then one section per subcommand with its synopsis,
//! description, options and examples, so that `man layercrypt` alone documents everything.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_mangen::Man;

use super::Cli;

/// Write the man page (roff) to `out`.
pub(super) fn render(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut page = Vec::new();
    Man::new(cmd.clone()).render(&mut page)?;
    let page = String::from_utf8_lossy(&page).replace(".SH EXTRA\n", ".SH NOTES\n");
    // The subcommands go after the list of them, before VERSION.
    let (head, tail) = match page.find(".SH VERSION\n") {
        Some(at) => page.split_at(at),
        None => (page.as_str(), ""),
    };
    out.write_all(head.as_bytes())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone());
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        section(out, |w| man.render_synopsis_section(w), None)?;
        section(out, |w| man.render_description_section(w), None)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            section(out, |w| man.render_options_section(w), Some("Options"))?;
        }
        if sub.get_after_help().is_some() {
            section(
                out,
                |w| man.render_extra_section(w),
                Some("Examples and notes"),
            )?;
        }
    }
    out.write_all(tail.as_bytes())
}

/// Render one section of a subcommand's page as part of this page: its `.SH` heading becomes
/// the subsection `heading`, or is dropped.
fn section(
    out: &mut dyn Write,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    heading: Option<&str>,
) -> io::Result<()> {
    let mut text = Vec::new();
    render(&mut text)?;
    let text = String::from_utf8_lossy(&text);
    let body = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with(".SH") => rest,
        _ => &text,
    };
    if let Some(h) = heading {
        writeln!(out, ".SS \"{h}\"")?;
    } else {
        writeln!(out, ".PP")?;
    }
    out.write_all(body.as_bytes())
}
