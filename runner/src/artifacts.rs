//! Collecting artifacts as CodeBuild does: `files` globs (with `**`)
//! relative to `base-directory` (itself relative to the source), minus
//! `exclude-paths`; `discard-paths` flattens the result.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::buildspec::Artifacts;

fn set(patterns: &[String]) -> anyhow::Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim_start_matches("./");
        b.add(Glob::new(p).map_err(|e| anyhow::anyhow!("bad pattern {p:?}: {e}"))?);
        // "dir/**/*" also means the files right in dir, as CodeBuild reads it.
        if let Some(prefix) = p.strip_suffix("/**/*") {
            b.add(Glob::new(&format!("{prefix}/*"))?);
        }
    }
    Ok(b.build()?)
}

fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let r = rel.join(e.file_name());
        if ft.is_dir() {
            walk(&e.path(), &r, out);
        } else if ft.is_file() {
            out.push(r);
        }
    }
}

/// The files an artifact takes: (source path, path inside the artifact).
pub fn collect(source: &Path, spec: &Artifacts) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let base = match &spec.base_directory {
        Some(b) => {
            let b = b.trim_start_matches("./");
            if Path::new(b).is_absolute() || b.split('/').any(|p| p == "..") {
                anyhow::bail!("base-directory {b:?} must stay inside the source directory");
            }
            source.join(b)
        }
        None => source.to_path_buf(),
    };
    let include = set(&spec.files)?;
    let exclude = set(&spec.exclude_paths)?;
    let mut all = Vec::new();
    walk(&base, Path::new(""), &mut all);
    let mut out = Vec::new();
    for rel in all {
        if !include.is_match(&rel) || exclude.is_match(&rel) {
            continue;
        }
        let dest = if spec.discard_paths {
            PathBuf::from(rel.file_name().unwrap_or_default())
        } else {
            rel.clone()
        };
        out.push((base.join(&rel), dest));
    }
    Ok(out)
}

/// Copies an artifact's files into `dest`; answers how many.
pub fn write(source: &Path, spec: &Artifacts, dest: &Path) -> anyhow::Result<usize> {
    let files = collect(source, spec)?;
    if files.is_empty() {
        anyhow::bail!("no matching artifact paths found");
    }
    for (from, to) in &files {
        let target = dest.join(to);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, &target)?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_bases_exclusions_and_flattening() {
        let tmp = tempfile::tempdir().unwrap();
        let s = tmp.path();
        for f in ["out/a.txt", "out/sub/b.txt", "out/sub/c.log", "src/main.c"] {
            std::fs::create_dir_all(s.join(f).parent().unwrap()).unwrap();
            std::fs::write(s.join(f), f).unwrap();
        }
        let spec = Artifacts {
            files: vec!["**/*".into()],
            base_directory: Some("out".into()),
            exclude_paths: vec!["**/*.log".into()],
            ..Default::default()
        };
        let got: Vec<_> = collect(s, &spec)
            .unwrap()
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        assert_eq!(
            got,
            vec![PathBuf::from("a.txt"), PathBuf::from("sub/b.txt")]
        );
        let flat = Artifacts {
            discard_paths: true,
            ..spec.clone()
        };
        let got: Vec<_> = collect(s, &flat)
            .unwrap()
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        assert_eq!(got, vec![PathBuf::from("a.txt"), PathBuf::from("b.txt")]);
        let escape = Artifacts {
            base_directory: Some("../x".into()),
            ..spec
        };
        assert!(collect(s, &escape).is_err());
    }
}
