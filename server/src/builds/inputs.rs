//! A pipeline build's input artifacts, put in its source before the
//! buildspec is read: the primary input laid over the checkout (CodeBuild
//! runs in the primary input artifact), each other one in
//! `.codepipeline/NAME` with `CODEBUILD_SRC_DIR_NAME` naming it.
//!
//! Both sides are someone else's: the artifacts were written by an earlier
//! build's sandbox, the checkout is a repository's content. Nothing is
//! followed through a link on either side (links and special files in the
//! artifacts are skipped; a link in the checkout where an artifact goes is
//! replaced), so an input can neither read nor write outside the two trees.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::run::Job;
use super::{build_dir, Input};
use crate::ctx::Ctx;
use crate::error::Result;

/// Where secondary inputs go, under the source.
pub const SECONDARY_DIR: &str = ".codepipeline";

/// Puts the build's inputs in place; answers each secondary input's
/// variable name and its path under the source, or why the build cannot
/// run (it then fails in DOWNLOAD_SOURCE).
pub(super) async fn materialize(
    ctx: &Ctx,
    job: &Job,
) -> Result<std::result::Result<Vec<(String, String)>, String>> {
    let json: String = sqlx::query_scalar("SELECT inputs_json FROM builds WHERE id = $1")
        .bind(&job.id)
        .fetch_one(&ctx.pool)
        .await?;
    let inputs: Vec<Input> = serde_json::from_str(&json).unwrap_or_default();
    let mut secondary = Vec::new();
    for input in inputs {
        let mut from = build_dir(&ctx.settings.data_dir, &input.build_id).join("artifacts");
        // One of several output artifacts: the secondary artifact of that name.
        if let Some(sub) = &input.subdir {
            if sub.is_empty() || sub.contains('/') || sub.starts_with('.') {
                return Ok(Err(format!(
                    "CLIENT_ERROR: {sub:?} is not an artifact name"
                )));
            }
            from = from.join(sub);
        }
        if !from.is_dir() {
            return Ok(Err(format!(
                "CLIENT_ERROR: input artifact {}: build {} kept no artifacts (its buildspec has no artifacts section)",
                input.name, input.build_id
            )));
        }
        let (dest, rel) = if input.primary {
            (job.src.clone(), String::new())
        } else {
            let rel = format!("{SECONDARY_DIR}/{}", input.name);
            if let Err(e) = ensure_dir(&job.src.join(SECONDARY_DIR)) {
                return Ok(Err(format!(
                    "CLIENT_ERROR: cannot make {SECONDARY_DIR}: {e}"
                )));
            }
            (job.src.join(&rel), rel)
        };
        let src = from.clone();
        let copied = tokio::task::spawn_blocking(move || copy_tree(&src, &dest))
            .await
            .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
        match copied {
            Ok((files, skipped)) => {
                let place = if input.primary {
                    "over the source".to_string()
                } else {
                    rel.clone()
                };
                job.log.say(&format!(
                    "Input artifact {} from build {}: {files} files {place}{}",
                    input.name,
                    input.build_id,
                    if skipped > 0 {
                        format!(" ({skipped} links or special files skipped)")
                    } else {
                        String::new()
                    }
                ));
            }
            Err(e) => {
                return Ok(Err(format!(
                    "CLIENT_ERROR: cannot put input artifact {} in place: {e}",
                    input.name
                )))
            }
        }
        if !input.primary {
            let var = format!("CODEBUILD_SRC_DIR_{}", input.name.replace('-', "_"));
            secondary.push((var, rel));
        }
    }
    Ok(Ok(secondary))
}

/// Makes `dir` a real directory: a link or file in its place is removed.
fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            fs::remove_file(dir)?;
            fs::create_dir(dir)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(dir),
        Err(e) => Err(e),
    }
}

/// Copies the regular files and directories of `from` into `to`, following
/// no link on either side; answers the files copied and the entries skipped.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<(usize, usize)> {
    ensure_dir(to)?;
    let (mut files, mut skipped) = (0, 0);
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path)?;
        let dest = to.join(entry.file_name());
        if meta.is_dir() {
            let (f, s) = copy_tree(&path, &dest)?;
            files += f;
            skipped += s;
        } else if meta.is_file() {
            match fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&dest)?,
                Ok(_) => fs::remove_file(&dest)?,
                Err(_) => {}
            }
            let mut input = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&path)?;
            if !input.metadata()?.is_file() {
                skipped += 1;
                continue;
            }
            let mut output = OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&dest)?;
            io::copy(&mut input, &mut output)?;
            let mode = meta.permissions().mode() & 0o755;
            output.set_permissions(fs::Permissions::from_mode(mode | 0o600))?;
            files += 1;
        } else {
            skipped += 1;
        }
    }
    Ok((files, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_and_follows_no_link_on_either_side() {
        let t = tempfile::tempdir().unwrap();
        let (from, to, outside) = (t.path().join("a"), t.path().join("b"), t.path().join("x"));
        fs::create_dir_all(from.join("dist")).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(from.join("dist/app.js"), "app").unwrap();
        fs::write(outside.join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), from.join("leak")).unwrap();
        // The checkout has a link where the artifact's directory goes.
        std::os::unix::fs::symlink(&outside, to.join("dist")).unwrap();
        let (files, skipped) = copy_tree(&from, &to).unwrap();
        assert_eq!((files, skipped), (1, 1));
        assert_eq!(fs::read_to_string(to.join("dist/app.js")).unwrap(), "app");
        assert!(fs::symlink_metadata(to.join("dist")).unwrap().is_dir());
        assert!(
            !outside.join("app.js").exists(),
            "nothing written through the link"
        );
        assert!(!to.join("leak").exists(), "nothing read through a link");
    }
}
