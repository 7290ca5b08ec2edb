//! The server's layout rules (ARCHITECTURE.md, "Server layout"), checked
//! by reading the sources: every `crate::…` and `super::…` path in
//! `server/src` becomes an edge from its file to the file it names, and the
//! edges must only go down the layers; no source file of the project
//! (tests, benches and TypeScript included) passes 600 lines. A failure
//! names the file and the import.
//!
//! `NUBO_ARCH_SRC=CHECKOUT/server/src cargo test --test architecture --
//! --nocapture` measures another checkout (an older one) and prints its
//! picture: files, imports, cycles and the largest file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[path = "architecture/graph.rs"]
mod graph;

use graph::{code_only, cycles, paths, Tree};

/// Domains in their declared order, with the domains each may use.
const DOMAINS: &[(&str, &[&str])] = &[
    ("identity", &[]),
    ("repos", &["identity"]),
    ("params", &["identity"]),
    ("builds", &["identity", "repos", "params"]),
    ("workspaces", &["identity", "repos"]),
    ("pipelines", &["identity", "repos", "params", "builds"]),
    (
        "deployments",
        &["identity", "repos", "params", "builds", "pipelines"],
    ),
];

/// Files of a domain that are its transport, besides `api.rs`, `pages.rs`
/// and `cli.rs`: git over HTTP and SSH, the preview origin.
const TRANSPORT_FILES: &[&str] = &[
    "repos/git_http.rs",
    "repos/ssh.rs",
    "workspaces/preview.rs",
    "deployments/agent_api.rs",
    "deployments/app_proxy.rs",
];

const MAX_LINES: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Leaf,
    Core,
    State,
    Transport,
    Composition,
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

/// Every source file of the project: each crate's Rust (sources, tests,
/// benches), the TypeScript islands and the browser tests; `node_modules`, `dist` and
/// `target` are not ours.
fn project_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "node_modules" | "dist" | "target")
                && !name.starts_with('.')
            {
                project_sources(&p, out);
            }
        } else if name.ends_with(".rs")
            || name.ends_with(".mjs")
            || (name.ends_with(".ts") && !name.ends_with(".d.ts"))
        {
            out.push(p);
        }
    }
}

#[test]
fn no_file_passes_600_lines() {
    let mut too_long = Vec::new();
    let mut largest = (0, String::new());
    // The project root: two levels above `server/src` (this checkout's, or
    // the one NUBO_ARCH_SRC names).
    let root = src_dir().join("../..");
    let root = root.canonicalize().unwrap_or(root);
    let mut files = Vec::new();
    for krate in [
        "server",
        "runner",
        "frontend",
        "workspace-image",
        "git-hosting",
        "e2e",
    ] {
        project_sources(&root.join(krate), &mut files);
    }
    assert!(
        files.len() > 50,
        "the project's sources were not found under {}",
        root.display()
    );
    for path in files {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        if lines > largest.0 {
            largest = (lines, shown.clone());
        }
        if lines > MAX_LINES {
            too_long.push(format!("{shown}: {lines} lines"));
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
