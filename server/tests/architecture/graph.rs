//! The import graph of a source tree, read as text: each file's module
//! path, the `crate::`/`super::`/`self::` paths in its code (comments and
//! strings left out, use-groups expanded), the file each path lands in, and
//! the strongly connected components (cycles) of the result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One source file.
pub struct Source {
    /// Relative to `src/`, with `/`.
    pub path: String,
    pub module: Vec<String>,
    pub text: String,
}

pub fn read_tree(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
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

pub fn module_of(path: &str) -> Vec<String> {
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
pub fn code_only(text: &str) -> String {
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
pub fn paths(code: &str, module: &[String], is_mod_file: bool) -> Vec<Vec<String>> {
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
pub fn use_tree(s: &str) -> (Vec<Vec<String>>, usize) {
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

pub struct Tree {
    pub files: Vec<Source>,
    pub by_module: BTreeMap<Vec<String>, usize>,
}

impl Tree {
    pub fn read(src: &Path) -> Tree {
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
    pub fn edges(&self) -> Vec<(usize, usize, String)> {
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

/// Strongly connected components with more than one file (Tarjan).
pub fn cycles(n: usize, edges: &[(usize, usize, String)]) -> Vec<Vec<usize>> {
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
