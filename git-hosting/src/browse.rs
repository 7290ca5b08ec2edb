//! The read side of a repository, with gix: refs, trees, blobs, history and
//! the changes of a commit. Works on a plaintext working copy.

use std::path::Path;

use gix::object::tree::diff::Change;
use serde::Serialize;

use crate::{Error, Result};

/// Files larger than this are not diffed or shown inline.
pub const MAX_INLINE: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    /// `tree`, `blob`, `link` or `commit` (a submodule).
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommitInfo {
    pub id: String,
    pub summary: String,
    pub message: String,
    pub author: String,
    pub email: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    pub parents: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    pub path: String,
    /// `added`, `deleted`, `modified` or `renamed`.
    pub change: String,
    /// A unified diff; empty for binary or very large files.
    pub patch: String,
    pub binary: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refs {
    /// The branch HEAD points to.
    pub head: Option<String>,
    pub branches: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

fn open(dir: &Path) -> Result<gix::Repository> {
    gix::open(dir).map_err(|e| Error::Git(format!("cannot open repository: {e}")))
}

fn git_err(e: impl std::fmt::Display) -> Error {
    Error::Git(e.to_string())
}

/// Revisions users may name: branch or tag names and hex ids; nothing that
/// rev-parse would treat as an expression.
pub fn valid_rev(rev: &str) -> bool {
    !rev.is_empty()
        && rev.len() <= 250
        && !rev.starts_with(['-', '/', '.'])
        && !rev.contains("..")
        && !rev.contains("@{")
        && rev
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
}

fn commit_at<'r>(repo: &'r gix::Repository, rev: &str) -> Result<gix::Commit<'r>> {
    if !valid_rev(rev) {
        return Err(Error::NotFound(format!(
            "{rev:?} is not a branch, tag or commit"
        )));
    }
    let candidates = [
        format!("refs/heads/{rev}"),
        format!("refs/tags/{rev}"),
        rev.to_string(),
    ];
    for spec in &candidates {
        if let Ok(id) = repo.rev_parse_single(spec.as_str()) {
            if let Ok(commit) = id
                .object()
                .map_err(git_err)
                .and_then(|o| o.peel_to_commit().map_err(git_err))
            {
                return Ok(commit);
            }
        }
    }
    Err(Error::NotFound(format!("no branch, tag or commit {rev:?}")))
}

/// Whether `rev` names a commit here.
pub fn resolves(dir: &Path, rev: &str) -> bool {
    open(dir).is_ok_and(|repo| commit_at(&repo, rev).is_ok())
}

pub fn refs(dir: &Path) -> Result<Refs> {
    let repo = open(dir)?;
    let head = repo
        .head_name()
        .map_err(git_err)?
        .map(|n| n.shorten().to_string());
    let mut branches = Vec::new();
    let mut tags = Vec::new();
    let platform = repo.references().map_err(git_err)?;
    for r in platform.all().map_err(git_err)? {
        let mut r = r.map_err(|e| Error::Git(e.to_string()))?;
        let name = r.name().as_bstr().to_string();
        let id = match r.peel_to_id() {
            Ok(id) => id.to_string(),
            Err(_) => continue,
        };
        if let Some(b) = name.strip_prefix("refs/heads/") {
            branches.push((b.to_string(), id));
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            tags.push((t.to_string(), id));
        }
    }
    Ok(Refs {
        head,
        branches,
        tags,
    })
}

fn clean_path(path: &str) -> Result<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(Error::NotFound(format!("no path {path:?}")));
    }
    Ok(parts.join("/"))
}

fn kind_name(mode: gix::object::tree::EntryMode) -> &'static str {
    use gix::object::tree::EntryKind;
    match mode.kind() {
        EntryKind::Tree => "tree",
        EntryKind::Blob | EntryKind::BlobExecutable => "blob",
        EntryKind::Link => "link",
        EntryKind::Commit => "commit",
    }
}

/// The entries of a directory at `rev`, directories first.
pub fn tree(dir: &Path, rev: &str, path: &str) -> Result<Vec<Entry>> {
    let repo = open(dir)?;
    let commit = commit_at(&repo, rev)?;
    let path = clean_path(path)?;
    let root = commit.tree().map_err(git_err)?;
    let tree = if path.is_empty() {
        root
    } else {
        let entry = root
            .lookup_entry_by_path(&path)
            .map_err(git_err)?
            .ok_or_else(|| Error::NotFound(format!("no path {path:?} at {rev}")))?;
        if !entry.mode().is_tree() {
            return Err(Error::NotFound(format!("{path:?} is not a directory")));
        }
        entry.object().map_err(git_err)?.into_tree()
    };
    let mut out = Vec::new();
    for e in tree.iter() {
        let e = e.map_err(git_err)?;
        out.push(Entry {
            name: e.filename().to_string(),
            kind: kind_name(e.mode()).to_string(),
            id: e.oid().to_string(),
        });
    }
    out.sort_by(|a, b| {
        (a.kind != "tree", a.name.to_lowercase()).cmp(&(b.kind != "tree", b.name.to_lowercase()))
    });
    Ok(out)
}

/// The content of a file at `rev`.
pub fn blob(dir: &Path, rev: &str, path: &str) -> Result<Vec<u8>> {
    let repo = open(dir)?;
    let commit = commit_at(&repo, rev)?;
    let path = clean_path(path)?;
    let entry = commit
        .tree()
        .map_err(git_err)?
        .lookup_entry_by_path(&path)
        .map_err(git_err)?
        .ok_or_else(|| Error::NotFound(format!("no file {path:?} at {rev}")))?;
    if !entry.mode().is_blob() {
        return Err(Error::NotFound(format!("{path:?} is not a file")));
    }
    let data = entry.object().map_err(git_err)?.detach().data;
    Ok(data)
}

fn info(commit: &gix::Commit<'_>) -> Result<CommitInfo> {
    let message = commit.message_raw_sloppy().to_string();
    let author = commit.author().map_err(git_err)?;
    Ok(CommitInfo {
        id: commit.id.to_string(),
        summary: commit.message().map_err(git_err)?.summary().to_string(),
        message,
        author: author.name.to_string(),
        email: author.email.to_string(),
        time: author.time().map(|t| t.seconds).unwrap_or(0),
        parents: commit.parent_ids().map(|p| p.to_string()).collect(),
    })
}

/// Up to `limit` commits reachable from `rev`, newest first.
pub fn log(dir: &Path, rev: &str, limit: usize) -> Result<Vec<CommitInfo>> {
    let repo = open(dir)?;
    let start = commit_at(&repo, rev)?;
    let mut out = Vec::new();
    for item in start.ancestors().all().map_err(git_err)? {
        let item = item.map_err(git_err)?;
        let commit = repo.find_commit(item.id).map_err(git_err)?;
        out.push(info(&commit)?);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// An entry of a directory with the last commit that changed it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryWithCommit {
    #[serde(flatten)]
    pub entry: Entry,
    /// `None` when it was not found within the commits looked at.
    pub commit: Option<CommitInfo>,
}

/// The ids of the entries of the directory `path` in `commit`'s tree
/// (empty when it has no such directory).
fn dir_ids(
    commit: &gix::Commit<'_>,
    path: &str,
) -> Result<std::collections::HashMap<String, gix::ObjectId>> {
    let root = commit.tree().map_err(git_err)?;
    let tree = if path.is_empty() {
        root
    } else {
        match root.lookup_entry_by_path(path).map_err(git_err)? {
            Some(e) if e.mode().is_tree() => e.object().map_err(git_err)?.into_tree(),
            _ => return Ok(Default::default()),
        }
    };
    let mut out = std::collections::HashMap::new();
    for e in tree.iter() {
        let e = e.map_err(git_err)?;
        out.insert(e.filename().to_string(), e.oid().to_owned());
    }
    Ok(out)
}

/// The entries of a directory at `rev` (as [`tree`]) with the last commit
/// that changed each one: the newest commit, walking back from `rev`, whose
/// entry differs from the entry in every one of its parents (a merge that
/// took a side's version unchanged is passed over, as `git log -1 -- PATH`
/// does). At most `budget` commits are looked at; entries older than that
/// have no commit.
pub fn tree_with_commits(
    dir: &Path,
    rev: &str,
    path: &str,
    budget: usize,
) -> Result<Vec<EntryWithCommit>> {
    let entries = tree(dir, rev, path)?;
    let path = clean_path(path)?;
    let repo = open(dir)?;
    let start = commit_at(&repo, rev)?;
    let mut found: std::collections::HashMap<String, CommitInfo> = Default::default();
    let mut cache = std::collections::HashMap::new();
    type Ids = std::collections::HashMap<String, gix::ObjectId>;
    fn ids(
        cache: &mut std::collections::HashMap<gix::ObjectId, Ids>,
        commit: &gix::Commit<'_>,
        path: &str,
    ) -> Result<Ids> {
        if let Some(m) = cache.get(&commit.id) {
            return Ok(m.clone());
        }
        let m = dir_ids(commit, path)?;
        cache.insert(commit.id, m.clone());
        Ok(m)
    }
    for item in start.ancestors().all().map_err(git_err)?.take(budget) {
        if found.len() == entries.len() {
            break;
        }
        let item = item.map_err(git_err)?;
        let commit = repo.find_commit(item.id).map_err(git_err)?;
        let here = ids(&mut cache, &commit, &path)?;
        let mut parents = Vec::new();
        for p in commit.parent_ids() {
            parents.push(ids(
                &mut cache,
                &repo.find_commit(p).map_err(git_err)?,
                &path,
            )?);
        }
        for e in &entries {
            if found.contains_key(&e.name) {
                continue;
            }
            let mine = here.get(&e.name);
            if mine.is_some() && !parents.iter().any(|p| p.get(&e.name) == mine) {
                found.insert(e.name.clone(), info(&commit)?);
            }
        }
        // Keep memory bounded on long histories: only the frontier matters.
        if cache.len() > 4 * budget.min(1024) {
            cache.clear();
        }
    }
    Ok(entries
        .into_iter()
        .map(|entry| EntryWithCommit {
            commit: found.remove(&entry.name),
            entry,
        })
        .collect())
}

/// How many commits are reachable from `rev`, counting at most `cap`.
pub fn count(dir: &Path, rev: &str, cap: usize) -> Result<usize> {
    let repo = open(dir)?;
    let start = commit_at(&repo, rev)?;
    let n = start.ancestors().all().map_err(git_err)?.take(cap).count();
    Ok(n)
}

fn text(data: &[u8]) -> Option<&str> {
    if data.len() > MAX_INLINE || data.contains(&0) {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// A commit and what it changed against its first parent.
pub fn commit(dir: &Path, id: &str) -> Result<(CommitInfo, Vec<FileChange>)> {
    if !(4..=64).contains(&id.len()) || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::NotFound(format!("{id:?} is not a commit id")));
    }
    let repo = open(dir)?;
    let commit = commit_at(&repo, id)?;
    let new_tree = commit.tree().map_err(git_err)?;
    let old_tree = match commit.parent_ids().next() {
        Some(p) => repo
            .find_commit(p)
            .map_err(git_err)?
            .tree()
            .map_err(git_err)?,
        None => repo.empty_tree(),
    };
    let mut raw: Vec<(
        String,
        &'static str,
        Option<gix::ObjectId>,
        Option<gix::ObjectId>,
    )> = Vec::new();
    old_tree
        .changes()
        .map_err(git_err)?
        .options(|o| {
            o.track_path().track_rewrites(None);
        })
        .for_each_to_obtain_tree(&new_tree, |change| {
            if change.entry_mode().is_blob() {
                let path = change.location().to_string();
                let item = match &change {
                    Change::Addition { id, .. } => (path, "added", None, Some(id.detach())),
                    Change::Deletion { id, .. } => (path, "deleted", Some(id.detach()), None),
                    Change::Modification {
                        previous_id, id, ..
                    } => (
                        path,
                        "modified",
                        Some(previous_id.detach()),
                        Some(id.detach()),
                    ),
                    Change::Rewrite { source_id, id, .. } => {
                        (path, "renamed", Some(source_id.detach()), Some(id.detach()))
                    }
                };
                raw.push(item);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .map_err(git_err)?;
    let load = |id: Option<gix::ObjectId>| -> Result<Vec<u8>> {
        match id {
            Some(id) => Ok(repo.find_object(id).map_err(git_err)?.detach().data),
            None => Ok(Vec::new()),
        }
    };
    let mut changes = Vec::new();
    for (path, change, old, new) in raw {
        let (a, b) = (load(old)?, load(new)?);
        let (patch, binary) = match (text(&a), text(&b)) {
            (Some(x), Some(y)) => (
                similar::TextDiff::from_lines(x, y)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("a/{path}"), &format!("b/{path}"))
                    .to_string(),
                false,
            ),
            _ => (String::new(), true),
        };
        changes.push(FileChange {
            path,
            change: change.to_string(),
            patch,
            binary,
        });
    }
    Ok((info(&commit)?, changes))
}

/// The files that differ between `old` (or, when it is `None` or not a
/// commit here, `new`'s first parent) and `new`: what a push changed. At
/// most `limit` paths.
pub fn changed_paths(
    dir: &Path,
    old: Option<&str>,
    new: &str,
    limit: usize,
) -> Result<Vec<String>> {
    let repo = open(dir)?;
    let new_commit = commit_at(&repo, new)?;
    let new_tree = new_commit.tree().map_err(git_err)?;
    let base = match old.and_then(|o| commit_at(&repo, o).ok()) {
        Some(c) => Some(c),
        None => match new_commit.parent_ids().next() {
            Some(p) => Some(repo.find_commit(p).map_err(git_err)?),
            None => None,
        },
    };
    let old_tree = match base {
        Some(c) => c.tree().map_err(git_err)?,
        None => repo.empty_tree(),
    };
    let mut out = Vec::new();
    old_tree
        .changes()
        .map_err(git_err)?
        .options(|o| {
            o.track_path().track_rewrites(None);
        })
        .for_each_to_obtain_tree(&new_tree, |change| {
            if (change.entry_mode().is_blob() || change.entry_mode().is_link()) && out.len() < limit
            {
                out.push(change.location().to_string());
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .map_err(git_err)?;
    Ok(out)
}

/// The README at the top of `rev`, if any: (file name, text).
pub fn readme(dir: &Path, rev: &str) -> Option<(String, String)> {
    let entries = tree(dir, rev, "").ok()?;
    let name = entries
        .iter()
        .filter(|e| e.kind == "blob")
        .map(|e| e.name.clone())
        .find(|n| {
            let l = n.to_ascii_lowercase();
            l == "readme.md" || l == "readme" || l == "readme.txt" || l == "readme.markdown"
        })?;
    let data = blob(dir, rev, &name).ok()?;
    Some((name, text(&data)?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_revisions_are_accepted() {
        for ok in ["main", "feature/x", "v1.0", "0123abcd"] {
            assert!(valid_rev(ok), "{ok}");
        }
        for bad in [
            "", "-x", "a..b", "main@{1}", "HEAD^", "a b", "/etc", ".hidden", "main~1", "a:b",
        ] {
            assert!(!valid_rev(bad), "{bad}");
        }
    }

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=T", "-c", "user.email=t@example.org"])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn each_entry_gets_the_last_commit_that_changed_it() {
        let tmp = tempfile::tempdir().unwrap();
        let w = tmp.path();
        git(w, &["init", "-q", "-b", "main"]);
        let put = |name: &str, text: &str| {
            std::fs::create_dir_all(w.join(name).parent().unwrap()).unwrap();
            std::fs::write(w.join(name), text).unwrap();
        };
        let commit = |message: &str| {
            git(w, &["add", "-A"]);
            git(w, &["commit", "-qm", message]);
            git(w, &["rev-parse", "HEAD"])
        };
        put("a", "1");
        put("b", "1");
        put("d/x", "1");
        let first = commit("first");
        put("a", "2");
        commit("a two");
        put("d/x", "2");
        let x_two = commit("x two");
        git(w, &["checkout", "-qb", "side"]);
        put("b", "2");
        let b_two = commit("b two");
        git(w, &["checkout", "-q", "main"]);
        put("a", "3");
        let a_three = commit("a three");
        git(w, &["merge", "-q", "--no-ff", "-m", "merge side", "side"]);
        let by_name = |path: &str| {
            tree_with_commits(w, "main", path, 100)
                .unwrap()
                .into_iter()
                .map(|e| (e.entry.name, e.commit.map(|c| c.id)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            by_name(""),
            vec![
                ("d".to_string(), Some(x_two.clone())),
                ("a".to_string(), Some(a_three)),
                ("b".to_string(), Some(b_two)),
            ]
        );
        assert_eq!(by_name("d"), vec![("x".to_string(), Some(x_two))]);
        // With too small a budget the old ones are left without a commit.
        let short = tree_with_commits(w, "main", "", 1).unwrap();
        assert!(short.iter().all(|e| e.commit.is_none()), "{short:?}");
        assert_eq!(count(w, "main", 1000).unwrap(), 6);
        assert_eq!(count(w, &first, 1000).unwrap(), 1);
    }

    #[test]
    fn paths_cannot_climb() {
        assert_eq!(clean_path("/a//b/").unwrap(), "a/b");
        assert!(clean_path("a/../../etc").is_err());
    }
}
