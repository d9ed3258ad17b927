//! `layercrypt man`: one manual page, layercrypt(1), generated from the same clap definition
//! as `--help`, so that `man layercrypt` alone documents everything: NAME, SYNOPSIS,
//! DESCRIPTION and OPTIONS of the command, then COMMANDS with each subcommand's description,
//! synopsis, options and examples, then NOTES (image references, environment, exit status).
//!
//! clap_mangen renders the synopses and option lists; the examples and notes are set without
//! filling, as `--help` shows them, so that commands can be copied from the page.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_mangen::Man;

use super::Cli;

/// Write the man page (roff) to `out`.
pub(super) fn render(out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    let man = Man::new(cmd.clone());
    // The quote string the option lists use (clap_mangen repeats it before every section).
    let mut page = String::from(".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n");
    page += &rendered(|w| man.render_title(w), false)?;
    page += &rendered(|w| man.render_name_section(w), true)?;
    page += &rendered(|w| man.render_synopsis_section(w), true)?;
    page += &rendered(|w| man.render_description_section(w), true)?;
    page += &rendered(|w| man.render_options_section(w), true)?;
    page += ".SH COMMANDS\n";
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let man = Man::new(sub.clone());
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        page += &format!(".SS \"{name}\"\n");
        page += &rendered(|w| man.render_description_section(w), false)?;
        page += ".PP\n";
        page += &rendered(|w| man.render_synopsis_section(w), false)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page += &rendered(|w| man.render_options_section(w), false)?;
        }
        if let Some(text) = sub.get_after_help() {
            page += &verbatim(&text.to_string());
        }
    }
    if let Some(text) = cmd.get_after_help() {
        page += ".SH NOTES\n";
        page += &verbatim(&text.to_string());
    }
    page += ".SH VERSION\n";
    page += &verbatim(&format!("layercrypt {}", super::LONG_VERSION));
    out.write_all(ascii(&page).as_bytes())
}

/// One section as clap_mangen renders it, without the quote string definition it repeats
/// before every section, and without its `.SH` heading unless `keep_heading`.
fn rendered(
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    keep_heading: bool,
) -> io::Result<String> {
    let mut text = Vec::new();
    render(&mut text)?;
    let text = String::from_utf8_lossy(&text);
    let mut out = String::new();
    let mut heading_seen = false;
    for line in text.lines() {
        if line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq") {
            continue;
        }
        if line.starts_with(".SH") && !heading_seen {
            heading_seen = true;
            if !keep_heading {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// `--help` text set line for line, unfilled, in the body font, indented a little.
fn verbatim(text: &str) -> String {
    let mut out = String::from(".PP\n.RS 2\n.nf\n");
    for line in text.lines() {
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        if escaped.starts_with('.') || escaped.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&escaped);
        out.push('\n');
    }
    out.push_str(".fi\n.RE\n");
    out
}

/// The page in ASCII: other characters as groff's `\[uXXXX]` escapes, so that it renders
/// without a preprocessor for the input encoding.
fn ascii(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_text_cannot_become_roff_requests() {
        assert_eq!(
            verbatim(".x\n'y\na-b \\n"),
            ".PP\n.RS 2\n.nf\n\\&.x\n\\&'y\na\\-b \\en\n.fi\n.RE\n"
        );
        assert_eq!(ascii("a … b"), "a \\[u2026] b");
    }
}
