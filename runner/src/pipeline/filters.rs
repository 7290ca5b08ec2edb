//! Push filters (CodePipeline V2's `triggers[].gitConfiguration.push`):
//! which pushes start a pipeline. A filter names branches or tags, with
//! includes and excludes (globs; excludes win), and for branches maybe
//! file paths, of which at least one changed file must be admitted.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Globs to include and to exclude.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patterns {
    #[serde(default)]
    pub includes: Vec<String>,
    #[serde(default)]
    pub excludes: Vec<String>,
}

/// One push filter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Patterns>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<Patterns>,
}

/// `*` matches any run of characters but `/`, `**` any run including `/`
/// (and `dir/**/x` matches `dir/x`), `?` one character but `/`.
pub fn glob(pattern: &str, text: &str) -> bool {
    fn at(
        p: &[u8],
        t: &[u8],
        i: usize,
        j: usize,
        memo: &mut HashMap<(usize, usize), bool>,
    ) -> bool {
        if let Some(&known) = memo.get(&(i, j)) {
            return known;
        }
        let answer = match p.get(i) {
            None => j == t.len(),
            Some(b'*') if p.get(i + 1) == Some(&b'*') => {
                let rest = i + 2;
                (j..=t.len()).any(|k| at(p, t, rest, k, memo))
                    || (p.get(rest) == Some(&b'/') && at(p, t, rest + 1, j, memo))
            }
            Some(b'*') => {
                let mut k = j;
                loop {
                    if at(p, t, i + 1, k, memo) {
                        break true;
                    }
                    if k == t.len() || t[k] == b'/' {
                        break false;
                    }
                    k += 1;
                }
            }
            Some(b'?') => j < t.len() && t[j] != b'/' && at(p, t, i + 1, j + 1, memo),
            Some(c) => t.get(j) == Some(c) && at(p, t, i + 1, j + 1, memo),
        };
        memo.insert((i, j), answer);
        answer
    }
    at(
        pattern.as_bytes(),
        text.as_bytes(),
        0,
        0,
        &mut HashMap::new(),
    )
}

impl Patterns {
    /// Included (no includes: everything) and not excluded.
    pub fn admits(&self, text: &str) -> bool {
        (self.includes.is_empty() || self.includes.iter().any(|p| glob(p, text)))
            && !self.excludes.iter().any(|p| glob(p, text))
    }
}

/// Whether a push of `ref_name` that changed `paths` matches `filters`,
/// and why, in words.
pub fn decide(filters: &[PushFilter], ref_name: &str, paths: &[String]) -> (bool, String) {
    let mut why = String::from("no push filter is for this ref");
    for (i, f) in filters.iter().enumerate() {
        let n = i + 1;
        let (kind, name, patterns) = if let Some(b) = ref_name.strip_prefix("refs/heads/") {
            ("branch", b, &f.branches)
        } else if let Some(t) = ref_name.strip_prefix("refs/tags/") {
            ("tag", t, &f.tags)
        } else {
            return (false, format!("{ref_name} is neither a branch nor a tag"));
        };
        let Some(patterns) = patterns else { continue };
        if !patterns.admits(name) {
            why = format!("filter {n}: {kind} {name} is not included, or is excluded");
            continue;
        }
        match &f.file_paths {
            Some(files) => match paths.iter().find(|p| files.admits(p)) {
                Some(hit) => {
                    return (
                        true,
                        format!("filter {n}: {kind} {name}, and {hit} changed"),
                    )
                }
                None => {
                    why = format!(
                        "filter {n}: {kind} {name}, but none of the {} changed files is included",
                        paths.len()
                    )
                }
            },
            None => return (true, format!("filter {n}: {kind} {name}")),
        }
    }
    (false, why)
}
