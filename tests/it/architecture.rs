//! The library's module dependency graph has no cycle.
//!
//! Read from the source tree, not from the compiler: the top-level modules of the library are
//! the `mod X;` declarations of `src/lib.rs` (with or without `pub`, `#[cfg(...)]` or other
//! attributes; `src/main.rs` and anything only the binary declares are not the library), and
//! module A depends on module B when a file of A (`src/A.rs`, or any file under `src/A/`)
//! names a path into B: `crate::B…`, `crate::{B, …}` in a `use`, `super::…` and `self::…`
//! paths that lead there, or `crate::Name` for a name `src/lib.rs` imports from B
//! (`pub use error::Error;`). Test code does not count: files named `tests.rs`, the files of a
//! `#[cfg(test)] mod X;`, and every item marked `#[cfg(test)]` (a `mod tests { … }` block, a
//! test helper) are skipped, and so are comments, doc comments and string literals.
//!
//! Two levels are checked, each by a test of its own:
//! - between the top-level modules (`top_level_modules_have_no_cycle`);
//! - inside each top-level module with submodules (`src/A/`), between siblings only, A::X and
//!   A::Y (`sibling_submodules_have_no_cycle`). A parent and its children depend on each other
//!   as a matter of course in Rust (the parent declares and re-exports them, they use the
//!   parent's types) and are not checked; a dependency through the parent's re-export of a
//!   sibling's item (`super::Item`) is not seen either.
//!
//! On failure the message names each strongly connected component with the edges inside it
//! and, for each edge, where it is made. The whole graph goes to stderr:
//! `cargo test --test it architecture -- --nocapture`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The library's source directory.
fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
    /// A string, character or number literal (its content never matters here).
    Lit,
}

/// The tokens of a Rust source file with their line numbers: comments (doc comments too)
/// dropped, literals reduced to [`Tok::Lit`], lifetimes dropped.
fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let is_ident_start = |ch: char| ch == '_' || ch.is_alphabetic();
    let is_ident = |ch: char| ch == '_' || ch.is_alphanumeric();
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some((len, hashes)) = raw_string_start(&c[i..]) {
            // r"…", r#"…"#, br"…", cr#"…"#: no escapes, ends at a quote and as many `#`.
            let start = line;
            i += len;
            loop {
                if i >= c.len() {
                    panic!("unterminated raw string from line {start}");
                }
                if c[i] == '\n' {
                    line += 1;
                }
                if c[i] == '"'
                    && c[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes
                {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push((Tok::Lit, start));
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && next == Some('"')) {
            let start = line;
            i += if ch == '"' { 1 } else { 2 };
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if c.get(i) == Some(&'\n') {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
            out.push((Tok::Lit, start));
        } else if ch == '\'' || (ch == 'b' && next == Some('\'')) {
            // A character literal ('x', '\n', '\u{1F600}', b'x') or a lifetime ('a, 'static).
            let q = if ch == '\'' { i } else { i + 1 };
            if c.get(q + 1) == Some(&'\\') {
                // The escaped character is at q + 2; the closing quote after it.
                let mut j = q + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
                out.push((Tok::Lit, line));
            } else if c.get(q + 2) == Some(&'\'') {
                i = q + 3;
                out.push((Tok::Lit, line));
            } else {
                i = q + 1;
                while i < c.len() && is_ident(c[i]) {
                    i += 1;
                }
            }
        } else if ch == 'r' && next == Some('#') && c.get(i + 2).is_some_and(|&n| is_ident_start(n))
        {
            // A raw identifier, r#type.
            let start = i + 2;
            i = start;
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if is_ident_start(ch) {
            let start = i;
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch.is_ascii_digit() {
            while i < c.len() && is_ident(c[i]) {
                i += 1;
            }
            out.push((Tok::Lit, line));
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The length of a raw string's opening (`r"`, `r##"`, `br#"`, `cr"`) at the start of `c`,
/// and its number of `#`.
fn raw_string_start(c: &[char]) -> Option<(usize, usize)> {
    let prefix = match c {
        ['r', ..] => 1,
        ['b' | 'c', 'r', ..] => 2,
        _ => return None,
    };
    let hashes = c[prefix..].iter().take_while(|&&h| h == '#').count();
    (c.get(prefix + hashes) == Some(&'"')).then_some((prefix + hashes + 1, hashes))
}

// ---------------------------------------------------------------------------------------------
// Paths named by a file

/// What one file says about modules.
#[derive(Debug, Default)]
struct FileRefs {
    /// Every path it names that starts at `crate`, `super` or `self`, resolved to a path from
    /// the crate root, with the line it is on.
    paths: Vec<(Vec<String>, usize)>,
    /// Modules it declares with `mod X;` (not `#[cfg(test)]` ones).
    mods: Vec<String>,
    /// Modules it declares with `#[cfg(test)] mod X;`.
    test_mods: Vec<String>,
    /// The paths of its `use` items that start with a plain name (`use error::Error;`).
    plain_uses: Vec<Vec<String>>,
}

/// Read the tokens of the file whose module path is `module` (`["keywrap", "pgp"]` for
/// `src/keywrap/pgp/mod.rs`), following inline `mod x { … }` blocks for `super` and `self`,
/// and skipping items marked `#[cfg(test)]`.
fn scan(tokens: &[(Tok, usize)], module: &[String]) -> FileRefs {
    let mut refs = FileRefs::default();
    // Inline modules open at this point: name and the brace depth inside them.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let ident = |i: usize| match tokens.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: &Tok| tokens.get(i).is_some_and(|(x, _)| x == t);
    while i < tokens.len() {
        let (tok, line) = &tokens[i];
        match tok {
            Tok::Punct('#') if is(i + 1, &Tok::Punct('!')) && is(i + 2, &Tok::Punct('[')) => {
                // `#![cfg(test)]` at the top of a file: all of it is test code.
                let end = matching(tokens, i + 2);
                if is_cfg_test(&tokens[i + 3..end]) && inline.is_empty() {
                    return FileRefs::default();
                }
                i = end + 1;
            }
            Tok::Punct('#') if is(i + 1, &Tok::Punct('[')) => {
                let end = matching(tokens, i + 1);
                let cfg_test = is_cfg_test(&tokens[i + 2..end]);
                i = end + 1;
                if cfg_test {
                    // Skip the item: its other attributes, then up to its `;` or through its
                    // `{ … }`, whichever comes first (a field, variant or match arm: up to
                    // its `,`, or to the `}` that closes its list, which stays).
                    while is(i, &Tok::Punct('#')) && is(i + 1, &Tok::Punct('[')) {
                        i = matching(tokens, i + 1) + 1;
                    }
                    let start = i;
                    while i < tokens.len() {
                        match &tokens[i].0 {
                            Tok::Punct(';') => {
                                // `#[cfg(test)] mod X;`: X's files are test code.
                                if let Some(name) = declared_mod(&tokens[start..i]) {
                                    refs.test_mods.push(name);
                                }
                                i += 1;
                                break;
                            }
                            Tok::Punct(',') => {
                                i += 1;
                                break;
                            }
                            Tok::Punct('}') => break,
                            Tok::Punct('{') => {
                                i = matching(tokens, i) + 1;
                                break;
                            }
                            Tok::Punct('(' | '[') => i = matching(tokens, i) + 1,
                            _ => i += 1,
                        }
                    }
                }
            }
            Tok::Ident(kw)
                if kw == "use"
                    && ident(i + 1).is_some_and(|s| !["crate", "super", "self"].contains(&s)) =>
            {
                i = use_tree(tokens, i + 1, Vec::new(), &mut refs.plain_uses);
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let Some(name) = ident(i + 1) {
                    if is(i + 2, &Tok::Punct(';')) && inline.is_empty() {
                        refs.mods.push(name.to_string());
                    } else if is(i + 2, &Tok::Punct('{')) {
                        depth += 1;
                        inline.push((name.to_string(), depth));
                        i += 3;
                        continue;
                    }
                }
                i += 1;
            }
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(start)
                if ["crate", "super", "self"].contains(&start.as_str())
                    && is(i + 1, &Tok::Path) =>
            {
                let mut here: Vec<String> = module.to_vec();
                here.extend(inline.iter().map(|(n, _)| n.clone()));
                let mut found = Vec::new();
                i = use_tree(tokens, i, Vec::new(), &mut found);
                for path in found {
                    if let Some(abs) = resolve(&here, &path) {
                        refs.paths.push((abs, *line));
                    }
                }
            }
            _ => i += 1,
        }
    }
    refs
}

/// Whether the inside of an attribute is `cfg(test)`.
fn is_cfg_test(attr: &[(Tok, usize)]) -> bool {
    let attr: Vec<&Tok> = attr.iter().map(|(t, _)| t).collect();
    attr == [
        &Tok::Ident("cfg".into()),
        &Tok::Punct('('),
        &Tok::Ident("test".into()),
        &Tok::Punct(')'),
    ]
}

/// `mod NAME;` (after `pub`, `pub(crate)`…) as the whole of `item`: NAME.
fn declared_mod(item: &[(Tok, usize)]) -> Option<String> {
    let at = item
        .iter()
        .position(|(t, _)| *t == Tok::Ident("mod".into()))?;
    match (item.get(at + 1), item.len() == at + 2) {
        (Some((Tok::Ident(name), _)), true) => Some(name.clone()),
        _ => None,
    }
}

/// The index of the bracket that closes the one at `open` (`(`, `[` or `{`).
fn matching(tokens: &[(Tok, usize)], open: usize) -> usize {
    let mut depth = 0usize;
    for (j, (t, _)) in tokens.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return j;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Read a path or use tree starting at `i` (`a::b::c`, `a::{b, c::{d, self}}`, `a::*`),
/// appending every path it names (each prefixed with `prefix`) to `out`; returns the index
/// after it.
fn use_tree(
    tokens: &[(Tok, usize)],
    mut i: usize,
    prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix;
    loop {
        match tokens.get(i).map(|(t, _)| t) {
            Some(Tok::Ident(s)) => {
                path.push(s.clone());
                i += 1;
            }
            Some(Tok::Punct('{')) => {
                let end = matching(tokens, i);
                i += 1;
                while i < end {
                    i = use_tree(tokens, i, path.clone(), out);
                    // Skip `as name` and the comma.
                    while i < end && !matches!(tokens[i].0, Tok::Punct(',')) {
                        i += 1;
                    }
                    i += 1;
                }
                return end + 1;
            }
            _ => break,
        }
        if matches!(tokens.get(i), Some((Tok::Path, _))) {
            i += 1;
        } else {
            break;
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
    i
}

/// `path` (starting with `crate`, `super` or `self`, or a name in a group under one of them)
/// from the module `here`, as a path from the crate root; `self` at the end of a use group
/// names the module before it.
fn resolve(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut abs: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "self" | "super" => here.to_vec(),
        _ => return None,
    };
    for (n, seg) in path.iter().enumerate() {
        match seg.as_str() {
            "crate" if n == 0 => {}
            "self" => {}
            "super" => {
                abs.pop()?;
            }
            _ => abs.push(seg.clone()),
        }
    }
    Some(abs)
}

// ---------------------------------------------------------------------------------------------
// The graph

/// One edge, `from` → `to`, and where it is made: `src/….rs:LINE` and the path named there
/// (from the crate root), each once, in the order found.
type Edges = BTreeMap<(String, String), Vec<String>>;

/// Every `.rs` file of a module: `DIR/NAME.rs` and everything under `DIR/NAME/`.
fn module_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = dir.join(format!("{name}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut pending = vec![dir.join(name)];
    while let Some(d) = pending.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// The module path of a file under `src`: `src/keywrap/pgp/mod.rs` → `keywrap::pgp`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if path.last().is_some_and(|l| l == "mod") {
        path.pop();
    }
    path
}

/// The directory the `mod X;` declarations of `file` look in.
fn child_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap();
    match file.file_stem().unwrap().to_str().unwrap() {
        "mod" | "lib" | "main" => parent.to_path_buf(),
        stem => parent.join(stem),
    }
}

/// Every file of the library's module `top` that is not test code, read: not `tests.rs`
/// files, nor the files of `#[cfg(test)] mod X;` declarations.
fn read_module(src: &Path, top: &str) -> Vec<(PathBuf, FileRefs)> {
    let files = module_files(src, top);
    let mut read = Vec::new();
    let mut test_files: BTreeSet<PathBuf> = BTreeSet::new();
    for file in &files {
        if file.file_name().unwrap() == "tests.rs" {
            continue;
        }
        let text = fs::read_to_string(file).unwrap();
        let refs = scan(&tokenize(&text), &module_path(src, file));
        for m in &refs.test_mods {
            test_files.insert(child_dir(file).join(m));
        }
        read.push((file.clone(), refs));
    }
    // Drop the files of `#[cfg(test)] mod X;`: X.rs and everything under X/.
    read.retain(|(file, _)| {
        !test_files
            .iter()
            .any(|t| file.starts_with(t) || *file == t.with_extension("rs"))
    });
    read
}

/// The library's top-level modules: the `mod X;` declarations of `src/lib.rs`.
fn library_modules(src: &Path) -> Vec<String> {
    library_root(src).0
}

/// The library's top-level modules, and the names `src/lib.rs` imports from them into the
/// crate root (`pub use error::Error;` makes `crate::Error` a path into `error`).
fn library_root(src: &Path) -> (Vec<String>, BTreeMap<String, String>) {
    let text = fs::read_to_string(src.join("lib.rs")).unwrap();
    let refs = scan(&tokenize(&text), &[]);
    let mut mods = refs.mods;
    mods.sort();
    let mut imported = BTreeMap::new();
    for path in refs
        .plain_uses
        .iter()
        .chain(refs.paths.iter().map(|(p, _)| p))
    {
        if path.len() >= 2 && mods.contains(&path[0]) {
            imported.insert(path[path.len() - 1].clone(), path[0].clone());
        }
    }
    (mods, imported)
}

/// Record an edge `from` → `to` made at `file:line` by naming `path`.
fn add(
    edges: &mut Edges,
    (from, to): (&str, &str),
    src: &Path,
    file: &Path,
    line: usize,
    path: &[String],
) {
    let at = format!(
        "src/{}:{line} (crate::{})",
        file.strip_prefix(src).unwrap().display(),
        path.join("::")
    );
    let places = edges.entry((from.to_string(), to.to_string())).or_default();
    if !places.contains(&at) {
        places.push(at);
    }
}

/// The strongly connected components of more than one node (Tarjan's algorithm), each sorted,
/// in the order of their first node.
fn cycles(nodes: &[String], edges: &Edges) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        adj: BTreeMap<&'a str, Vec<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.adj.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let l = self.low[v].min(self.low[w]);
                    self.low.insert(v, l);
                } else if self.on_stack.contains(w) {
                    let l = self.low[v].min(self.index[w]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        adj: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for (from, to) in edges.keys() {
        t.adj.entry(from).or_default().push(to);
    }
    for v in nodes {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out.sort();
    t.out
}

/// `a -> b, c` for every node (`-` for none), one per line, each line prefixed with `indent`.
fn render(nodes: &[String], edges: &Edges, indent: &str) -> String {
    let mut s = String::new();
    for n in nodes {
        let to: Vec<&str> = edges
            .keys()
            .filter(|(f, _)| f == n)
            .map(|(_, t)| t.as_str())
            .collect();
        let to = if to.is_empty() {
            "-".to_string()
        } else {
            to.join(", ")
        };
        writeln!(s, "{indent}{n} -> {to}").unwrap();
    }
    s
}

/// `a<->b` for a component of two, `{a, b, c}` for a bigger one.
fn cycle_name(scc: &[String]) -> String {
    if scc.len() == 2 {
        format!("{}<->{}", scc[0], scc[1])
    } else {
        format!("{{{}}}", scc.join(", "))
    }
}

/// How many places of one edge a failure report shows.
const SHOWN_PLACES: usize = 8;

/// The failure report of the cycles: each component, its edges and where each edge is made.
fn report(sccs: &[Vec<String>], edges: &Edges, what: &str) -> String {
    let mut s = format!(
        "{what}: {} cycle(s): {}\n",
        sccs.len(),
        sccs.iter()
            .map(|c| cycle_name(c))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for scc in sccs {
        writeln!(s, "{} — the edges inside it:", cycle_name(scc)).unwrap();
        for ((from, to), at) in edges {
            if scc.contains(from) && scc.contains(to) {
                writeln!(s, "  {from} -> {to}, {} place(s):", at.len()).unwrap();
                for place in at.iter().take(SHOWN_PLACES) {
                    writeln!(s, "    {place}").unwrap();
                }
                if at.len() > SHOWN_PLACES {
                    writeln!(s, "    …").unwrap();
                }
            }
        }
    }
    s
}

/// The graph between the library's top-level modules.
fn top_level_graph(src: &Path) -> (Vec<String>, Edges) {
    let (nodes, imported) = library_root(src);
    let mut edges = Edges::new();
    for from in &nodes {
        for (file, refs) in read_module(src, from) {
            for (path, line) in &refs.paths {
                let to = path
                    .first()
                    .and_then(|first| nodes.iter().find(|n| *n == first).or(imported.get(first)));
                if let Some(to) = to
                    && to != from
                {
                    add(&mut edges, (from, to), src, &file, *line, path);
                }
            }
        }
    }
    (nodes, edges)
}

/// For each top-level module with submodules (declared with `mod X;` in its root file), the
/// graph between those submodules.
fn sibling_graphs(src: &Path) -> Vec<(String, Vec<String>, Edges)> {
    let mut graphs = Vec::new();
    for top in library_modules(src) {
        let files = read_module(src, &top);
        let root = [src.join(&top).join("mod.rs"), src.join(format!("{top}.rs"))];
        let Some((_, root_refs)) = files.iter().find(|(f, _)| root.contains(f)) else {
            continue;
        };
        let mut nodes = root_refs.mods.clone();
        nodes.sort();
        if nodes.is_empty() {
            continue;
        }
        let mut edges = Edges::new();
        for (file, refs) in &files {
            let module = module_path(src, file);
            let Some(from) = module.get(1).filter(|m| nodes.contains(m)) else {
                continue;
            };
            for (path, line) in &refs.paths {
                if path.first() == Some(&top)
                    && let Some(to) = path.get(1)
                    && to != from
                    && nodes.contains(to)
                {
                    add(&mut edges, (from, to), src, file, *line, path);
                }
            }
        }
        graphs.push((top, nodes, edges));
    }
    graphs
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn top_level_modules_have_no_cycle() {
    let src = src_dir();
    let (nodes, edges) = top_level_graph(&src);
    // Guard against a reader that silently sees nothing.
    assert!(
        nodes.len() >= 5 && edges.len() >= 5,
        "read too little from src/lib.rs and src/: {nodes:?}, {edges:?}"
    );
    let sccs = cycles(&nodes, &edges);
    eprintln!(
        "The library's top-level modules (src/lib.rs) and what each one uses:\n{}cycles: {}",
        render(&nodes, &edges, "  "),
        if sccs.is_empty() {
            "none".to_string()
        } else {
            sccs.iter()
                .map(|c| cycle_name(c))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    assert!(
        sccs.is_empty(),
        "{}",
        report(&sccs, &edges, "the library's top-level modules")
    );
}

#[test]
fn sibling_submodules_have_no_cycle() {
    let src = src_dir();
    let mut failures = String::new();
    for (top, nodes, edges) in sibling_graphs(&src) {
        let sccs = cycles(&nodes, &edges);
        eprintln!(
            "Inside {top} (between its submodules):\n{}",
            render(&nodes, &edges, "  ")
        );
        if !sccs.is_empty() {
            failures.push_str(&report(&sccs, &edges, &format!("the submodules of {top}")));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// The reader itself, on made-up sources: paths in every form, what it must not count.
#[test]
fn the_reader_sees_paths_and_skips_comments_strings_and_test_code() {
    let text = r####"
//! Docs naming crate::docs are not code. /* nor */
use crate::{alpha, beta::{self, Thing}, gamma::Other as G};
use super::sibling::Item;
/* A block comment: crate::block /* nested */ crate::still_block */
fn f() -> &'static str {
    let _c = '"';
    let _s = "crate::in_string // not a comment";
    let _r = r#"crate::in_raw "string""#;
    let _e = crate::delta::call();
    "x"
}
pub mod inline {
    fn g() { super::super::epsilon::h(); }
}
#[cfg(test)]
fn helper() { crate::test_helper::x(); }
#[cfg(test)]
mod tests;
#[cfg(test)]
mod more_tests {
    use crate::test_only;
}
mod declared;
fn after() { self::zeta::z(); }
fn literals<'a>(x: &'a str) {
    let _ = ('\'', '\\', b'x', '\u{1F600}', "a\"crate::escaped", b"crate::bytes");
    let _ = (x, $crate::eta::m!());
}
struct S {
    #[cfg(test)]
    field: crate::test_field::T,
    other: crate::theta::U,
}
"####;
    let here = ["top".to_string(), "sub".to_string()];
    let refs = scan(&tokenize(text), &here);
    let named: BTreeSet<String> = refs.paths.iter().map(|(p, _)| p.join("::")).collect();
    let expected: BTreeSet<String> = [
        "alpha",
        "beta",
        "beta::Thing",
        "gamma::Other",
        "top::sibling::Item",
        "delta::call",
        "top::epsilon::h",
        "top::sub::zeta::z",
        "eta::m",
        "theta::U",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(named, expected);
    assert_eq!(refs.mods, ["declared"]);
    assert_eq!(refs.test_mods, ["tests"]);
    // Lines are counted through comments and literals.
    let delta = refs.paths.iter().find(|(p, _)| p[0] == "delta").unwrap();
    assert_eq!(delta.1, 10);
}

/// The library's modules come from `mod` declarations, whatever their attributes; cycles are
/// found with the edges inside them.
#[test]
fn the_reader_finds_declared_modules_and_cycles() {
    let lib = r#"
//! mod in_docs;
#![forbid(unsafe_code)]
pub mod a;
#[cfg(feature = "x")]
pub mod b;
#[cfg(feature = "y")] pub(crate) mod c;
mod d;
#[cfg(test)]
mod e;
pub use a::Thing;
pub use crate::b::{Other, deep::Deeper};
use std::fmt;
"#;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("lib.rs"), lib).unwrap();
    let (mods, imported) = library_root(dir.path());
    assert_eq!(mods, ["a", "b", "c", "d"]);
    let imported: Vec<(&str, &str)> = imported
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(imported, [("Deeper", "b"), ("Other", "b"), ("Thing", "a")]);

    let nodes: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    let mut edges = Edges::new();
    let root = Path::new("src");
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "e"),
        ("e", "d"),
    ] {
        add(
            &mut edges,
            (from, to),
            root,
            &root.join(format!("{from}.rs")),
            1,
            &[to.to_string()],
        );
    }
    let sccs = cycles(&nodes, &edges);
    assert_eq!(sccs, [vec!["a", "b", "c"], vec!["d", "e"]]);
    let text = report(&sccs, &edges, "test");
    assert!(
        text.starts_with("test: 2 cycle(s): {a, b, c}, d<->e\n"),
        "{text}"
    );
    assert!(
        text.contains("  c -> a, 1 place(s):\n    src/c.rs:1 (crate::a)\n"),
        "{text}"
    );
    assert!(!text.contains("c -> d"), "{text}");
}
