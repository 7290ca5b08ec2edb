//! Build caches by key: `cache.paths` (globs; the part before the first
//! wildcard is what is kept) saved as a tar file named after the key, and
//! restored from the key or, failing that, the newest cache whose key
//! starts with a fallback key.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A key as a directory name.
pub fn file_name(key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    clean.trim_start_matches('.').to_string()
}

/// What the patterns name: paths relative to the source directory, and
/// absolute paths elsewhere (a cache restores relative paths into whatever
/// directory the next build's source is in).
pub fn roots(patterns: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut rel, mut abs) = (Vec::new(), Vec::new());
    for p in patterns {
        let stat: String = p
            .trim_start_matches("./")
            .split('/')
            .take_while(|part| !part.contains(['*', '?', '[', '{']))
            .collect::<Vec<_>>()
            .join("/");
        if stat.is_empty() || stat == "/" || stat.split('/').any(|s| s == "..") {
            continue;
        }
        let list = if stat.starts_with('/') {
            &mut abs
        } else {
            &mut rel
        };
        let clean = stat.trim_start_matches('/').to_string();
        if !list.contains(&clean) {
            list.push(clean);
        }
    }
    (rel, abs)
}

/// The cache to restore: the key's, else the newest whose key starts with
/// a fallback key.
pub fn find(dir: &Path, key: &str, fallbacks: &[String]) -> Option<(String, PathBuf)> {
    let exact = dir.join(file_name(key));
    if exact.is_dir() {
        return Some((file_name(key), exact));
    }
    let entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    for prefix in fallbacks {
        let want = file_name(prefix);
        let newest = entries
            .iter()
            .filter(|e| e.path().is_dir())
            .filter(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.starts_with(&want) && !n.starts_with('.')
            })
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        if let Some(e) = newest {
            return Some((e.file_name().to_string_lossy().to_string(), e.path()));
        }
    }
    None
}

fn tar(args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let out = Command::new("tar").args(args).output()?;
    if !out.status.success() {
        anyhow::bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

pub fn restore(found: &Path, source: &Path) -> anyhow::Result<()> {
    let (rel, abs) = (found.join("source.tar"), found.join("absolute.tar"));
    if rel.is_file() {
        tar(&[
            "-C".as_ref(),
            source.as_os_str(),
            "-xf".as_ref(),
            rel.as_os_str(),
        ])?;
    }
    if abs.is_file() {
        tar(&["-C".as_ref(), "/".as_ref(), "-xf".as_ref(), abs.as_os_str()])?;
    }
    Ok(())
}

/// Saves what exists of the patterns under `key`, replacing an older save
/// whole; answers the bytes kept.
pub fn save(dir: &Path, key: &str, source: &Path, patterns: &[String]) -> anyhow::Result<u64> {
    let (rel, abs) = roots(patterns);
    let rel: Vec<String> = rel
        .into_iter()
        .filter(|r| source.join(r).exists())
        .collect();
    let abs: Vec<String> = abs
        .into_iter()
        .filter(|a| Path::new("/").join(a).exists())
        .collect();
    if rel.is_empty() && abs.is_empty() {
        anyhow::bail!("none of the cache paths exist");
    }
    let tmp = dir.join(format!(
        ".partial-{}-{}",
        file_name(key),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let result = (|| -> anyhow::Result<u64> {
        let mut bytes = 0;
        for (base, list, name) in [
            (source, &rel, "source.tar"),
            (Path::new("/"), &abs, "absolute.tar"),
        ] {
            if list.is_empty() {
                continue;
            }
            let file = tmp.join(name);
            let mut args: Vec<&std::ffi::OsStr> = vec![
                "-C".as_ref(),
                base.as_os_str(),
                "-cf".as_ref(),
                file.as_os_str(),
            ];
            args.extend(list.iter().map(|p| std::ffi::OsStr::new(p.as_str())));
            tar(&args)?;
            bytes += std::fs::metadata(&file)?.len();
        }
        Ok(bytes)
    })();
    match result {
        Ok(bytes) => {
            let target = dir.join(file_name(key));
            let _ = std::fs::remove_dir_all(&target);
            std::fs::rename(&tmp, &target)?;
            Ok(bytes)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_names() {
        assert_eq!(
            roots(&[
                "node_modules/**/*".into(),
                "/root/.m2/**/*".into(),
                "../x/*".into(),
                "*".into()
            ]),
            (
                vec!["node_modules".to_string()],
                vec!["root/.m2".to_string()]
            )
        );
        assert_eq!(file_name("npm-1.2/x"), "npm-1.2_x");
    }

    #[test]
    fn fallbacks_pick_the_newest_prefix_match() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("deps-a")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::create_dir(tmp.path().join("deps-b")).unwrap();
        let (key, _) = find(tmp.path(), "deps-c", &["deps-".into()]).unwrap();
        assert_eq!(key, "deps-b");
        assert!(find(tmp.path(), "other", &["x-".into()]).is_none());
    }
}
