//! The server's layout rules (ARCHITECTURE.md, "Server layout"), checked
//! by reading the sources: every `crate::…` and `super::…` path in
//! `server/src` becomes an edge from its file to the file it names, and the
//! edges must only go down the layers; no file (tests included) passes 600
//! lines. A failure names the file and the import.
//!
//! `NUBO_ARCH_SRC=DIR cargo test --test architecture -- --nocapture`
//! measures another tree (an older checkout) and prints its picture.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Domains in their declared order, with the domains each may use.
const DOMAINS: &[(&str, &[&str])] = &[
    ("identity", &[]),
    ("repos", &["identity"]),
    ("params", &["identity"]),
    ("builds", &["identity", "repos", "params"]),
    ("workspaces", &["identity", "repos"]),
];

/// Files of a domain that are its transport, besides `api.rs`, `pages.rs`
/// and `cli.rs`: git over HTTP and SSH, the preview origin.
const TRANSPORT_FILES: &[&str] = &["repos/git_http.rs", "repos/ssh.rs", "workspaces/preview.rs"];

const MAX_LINES: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Leaf,
    Core,
    State,
    Transport,
    Composition,
}

struct Source {
    /// Relative to `src/`, with `/`.
    path: String,
    module: Vec<String>,
    text: String,
}

fn read_tree(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            read_tree(&p, base, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

fn module_of(path: &str) -> Vec<String> {
    let mut parts: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts
        .last()
        .is_some_and(|l| l == "mod" || l == "main" || l == "lib")
    {
        parts.pop();
    }
    parts
}

/// The code without comments and string literals (a path in a doc comment
/// or a message is no import).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A char literal such as '"'.
            out.push_str("' '");
            i += 3;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Every path (as segments) the code names after `crate::` or `super::`,
/// use-groups expanded; `super` is resolved against `module`.
fn paths(code: &str, module: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let boundary =
            i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b':');
        let rest = &code[i..];
        let (root, skip) = if boundary && rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if boundary && rest.starts_with("super::") {
            // The parent of this file's module (a mod.rs is its folder's module).
            let mut m = module.to_vec();
            let _ = is_mod_file;
            m.pop();
            let mut j = i + 7;
            while code[j..].starts_with("super::") {
                m.pop();
                j += 7;
            }
            (m, j - i)
        } else {
            i += 1;
            continue;
        };
        let (trees, used) = use_tree(&code[i + skip..]);
        for t in trees {
            let mut p = root.clone();
            p.extend(t);
            out.push(p);
        }
        i += skip + used.max(1);
    }
    out
}

/// Parses `a::b::{c, d::e, self}` (stopping at anything else); answers the
/// paths and the bytes read.
fn use_tree(s: &str) -> (Vec<Vec<String>>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut prefix: Vec<String> = Vec::new();
    loop {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            i += 1;
            let mut out = Vec::new();
            loop {
                while i < b.len() && (b[i] == b' ' || b[i] == b'\n' || b[i] == b',') {
                    i += 1;
                }
                if i >= b.len() || b[i] == b'}' {
                    i += 1;
                    break;
                }
                let (inner, used) = use_tree(&s[i..]);
                for t in inner {
                    let mut p = prefix.clone();
                    if t.first().is_some_and(|f| f == "self") {
                        p.extend(t.into_iter().skip(1));
                    } else {
                        p.extend(t);
                    }
                    out.push(p);
                }
                i += used.max(1);
            }
            return (out, i);
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if start == i {
            return (vec![prefix], i);
        }
        prefix.push(s[start..i].to_string());
        if s[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

struct Tree {
    files: Vec<Source>,
    by_module: BTreeMap<Vec<String>, usize>,
}

impl Tree {
    fn read(src: &Path) -> Tree {
        let mut raw = Vec::new();
        read_tree(src, src, &mut raw);
        let files: Vec<Source> = raw
            .into_iter()
            .map(|(path, text)| Source {
                module: module_of(&path),
                path,
                text,
            })
            .collect();
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        Tree { files, by_module }
    }

    /// The file a path names: the longest prefix that is a module.
    fn resolve(&self, path: &[String]) -> Option<usize> {
        (1..=path.len())
            .rev()
            .find_map(|n| self.by_module.get(&path[..n]).copied())
    }

    /// (from, to, the path as written) for every reference between files.
    fn edges(&self) -> Vec<(usize, usize, String)> {
        let mut out = BTreeSet::new();
        for (i, f) in self.files.iter().enumerate() {
            let code = code_only(&f.text);
            let mod_file = f.path.ends_with("mod.rs");
            for p in paths(&code, &f.module, mod_file) {
                if let Some(j) = self.resolve(&p) {
                    if j != i {
                        out.insert((i, j, p.join("::")));
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

fn domain_of(path: &str) -> Option<&'static str> {
    let first = path.split('/').next()?;
    DOMAINS.iter().find(|(d, _)| *d == first).map(|(d, _)| *d)
}

fn layer_of(path: &str) -> Layer {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path == "main.rs"
        || path == "serve.rs"
        || path.starts_with("cli/")
        || path == "http/router.rs"
    {
        Layer::Composition
    } else if path.starts_with("http/") {
        Layer::Transport
    } else if path == "state.rs" {
        Layer::State
    } else if domain_of(path).is_some() {
        let transport_dir = ["/api/", "/pages/", "/cli/"]
            .iter()
            .any(|d| path.contains(d));
        if matches!(name, "api.rs" | "pages.rs" | "cli.rs")
            || transport_dir
            || TRANSPORT_FILES.contains(&path)
        {
            Layer::Transport
        } else {
            Layer::Core
        }
    } else {
        Layer::Leaf
    }
}

/// The folder (or top-level file) a file belongs to, for cycles.
fn unit_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// Why the edge `from -> to` breaks a rule, if it does.
fn broken(from: &str, to: &str) -> Option<String> {
    let (lf, lt) = (layer_of(from), layer_of(to));
    if lf == Layer::Composition {
        return None;
    }
    if lt > lf {
        return Some(format!("a {lf:?} file may not use a {lt:?} file"));
    }
    let (df, dt) = (domain_of(from), domain_of(to));
    if let (Some(df), Some(dt)) = (df, dt) {
        if df != dt {
            let allowed = DOMAINS
                .iter()
                .find(|(d, _)| *d == df)
                .map(|(_, a)| *a)
                .unwrap_or(&[]);
            if !allowed.contains(&dt) {
                return Some(format!(
                    "{df} may not use {dt} (declared order: {DOMAINS:?})"
                ));
            }
            if lt == Layer::Transport {
                return Some(format!("{df} may not use {dt}'s transport"));
            }
        }
    }
    if lf == Layer::Core && lt == Layer::Transport {
        return Some("a domain core may not use its transport".into());
    }
    None
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(n: usize, edges: &[(usize, usize, String)]) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for (a, b, _) in edges {
        adj[*a].push(*b);
    }
    struct T<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for k in 0..t.adj[v].len() {
            let w = t.adj[v][k];
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut c = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                c.push(w);
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: vec![],
        next: 0,
        out: vec![],
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn src_dir() -> PathBuf {
    std::env::var_os("NUBO_ARCH_SRC").map_or_else(|| manifest().join("src"), PathBuf::from)
}

#[test]
fn imports_only_go_down_the_layers() {
    let tree = Tree::read(&src_dir());
    let edges = tree.edges();
    let mut problems = Vec::new();
    for (a, b, written) in &edges {
        let (from, to) = (&tree.files[*a].path, &tree.files[*b].path);
        if let Some(why) = broken(from, to) {
            problems.push(format!("{from}: `{written}` ({to}): {why}"));
        }
    }
    // A domain core names neither the server's state nor axum.
    for f in &tree.files {
        if layer_of(&f.path) != Layer::Core {
            continue;
        }
        let code = code_only(&f.text);
        for (n, line) in code.lines().enumerate() {
            for word in ["axum::", "AppState"] {
                if line.contains(word) {
                    problems.push(format!(
                        "{}:{}: a domain core names `{word}`: take `&Ctx` and the domain's registry",
                        f.path,
                        n + 1
                    ));
                }
            }
        }
    }
    // A domain's api, pages and cli call its core: they hold no SQL.
    for f in &tree.files {
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let facade = domain_of(&f.path).is_some()
            && (matches!(name, "api.rs" | "pages.rs" | "cli.rs") || f.path.contains("/cli/"));
        if !facade {
            continue;
        }
        for (n, line) in code_only(&f.text).lines().enumerate() {
            if line.contains("sqlx::query") {
                problems.push(format!(
                    "{}:{}: SQL in a domain's api, pages or cli: move it into the domain's core",
                    f.path,
                    n + 1
                ));
            }
        }
    }
    let sccs = cycles(tree.files.len(), &edges);
    for c in &sccs {
        let units: BTreeSet<&str> = c.iter().map(|i| unit_of(&tree.files[*i].path)).collect();
        let names: Vec<&str> = c.iter().map(|i| tree.files[*i].path.as_str()).collect();
        println!(
            "import cycle through {} files: {}",
            c.len(),
            names.join(", ")
        );
        if units.len() > 1 {
            problems.push(format!(
                "an import cycle across folders: {}",
                names.join(" ")
            ));
        }
    }
    println!(
        "{} files, {} imports between them, {} cycles",
        tree.files.len(),
        edges.len(),
        sccs.len()
    );
    assert!(
        problems.is_empty(),
        "layout rules broken:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_file_passes_600_lines() {
    let mut too_long = Vec::new();
    let mut largest = (0, String::new());
    let mut dirs = vec![src_dir()];
    if std::env::var_os("NUBO_ARCH_SRC").is_none() {
        dirs.extend([manifest().join("tests"), manifest().join("benches")]);
    }
    for dir in dirs {
        let mut files = Vec::new();
        read_tree(&dir, &dir, &mut files);
        for (path, text) in files {
            let lines = text.lines().count();
            let shown = format!("{}/{path}", dir.file_name().unwrap().to_string_lossy());
            if lines > largest.0 {
                largest = (lines, shown.clone());
            }
            if lines > MAX_LINES {
                too_long.push(format!("{shown}: {lines} lines"));
            }
        }
    }
    println!("largest file: {} ({} lines)", largest.1, largest.0);
    assert!(
        too_long.is_empty(),
        "files past {MAX_LINES} lines (split them by noun or verb):\n{}",
        too_long.join("\n")
    );
}

#[test]
fn the_checker_sees_what_it_checks() {
    // Use-groups, `self` and `super` resolve to the files they name.
    let code = "use crate::{a::{self, B}, c::d};\nfn f() { super::x::y(); crate::e::f(); }";
    let found = paths(&code_only(code), &["m".into(), "n".into()], false);
    let shown: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(shown, ["a", "a::B", "c::d", "m::x::y", "e::f"]);
    // Comments and strings name nothing.
    assert!(paths(&code_only("// crate::a\nlet s = \"crate::b\";"), &[], false).is_empty());
    assert_eq!(
        broken("builds/run.rs", "state.rs").as_deref(),
        Some("a Core file may not use a State file")
    );
    assert!(broken("builds/run.rs", "repos/mod.rs").is_none());
    assert!(broken("repos/mod.rs", "builds/mod.rs").is_some());
    assert!(broken("builds/mod.rs", "builds/api.rs").is_some());
    assert!(broken("builds/api.rs", "repos/api.rs").is_some());
    assert!(broken("serve.rs", "builds/api.rs").is_none());
}
