//! Revisions: what a deployment installs. A commit of a Nubo repository
//! (`git archive` of its tree) or a build's artifacts, as a tar bundle.
//! Bundles are made again when an agent downloads one rather than kept
//! (a repository's content stays encrypted at rest); both ways give the
//! same bytes, so the SHA-256 taken at creation checks the download.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::identity::accounts::User;

/// `{"repo", "commit"}` or `{"build_id"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Revision {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

impl Revision {
    /// How people read it: `web@1a2b3c4d5e6f` or `build 9f…`.
    pub fn label(&self) -> String {
        match (&self.repo, &self.commit, &self.build_id) {
            (Some(r), Some(c), _) => format!("{r}@{}", &c[..c.len().min(12)]),
            (_, _, Some(b)) => format!("build {b}"),
            _ => "?".into(),
        }
    }
}

/// A revision checked and hashed, ready to deploy.
pub struct Checked {
    pub revision: Revision,
    pub sha256: String,
    pub size: i64,
}

const MAX_APPSPEC: u64 = 1 << 20;

fn unprocessable(m: impl Into<String>) -> Error {
    Error::Unprocessable(m.into())
}

async fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .await
        .map_err(|e| Error::Internal(format!("cannot run git: {e}")))
}

/// Writes the revision's bundle to `out`. `user`, when given, must be
/// allowed to read it (creating a deployment); the engine's own reads
/// (downloads of an accepted deployment) pass `None`.
pub async fn write_bundle(
    ctx: &Ctx,
    locks: &crate::repos::Locks,
    user: Option<&User>,
    rev: &Revision,
    out: &Path,
) -> Result<Revision> {
    match (&rev.repo, &rev.commit, &rev.build_id) {
        (Some(repo), Some(commit), None) => {
            let r = match user {
                Some(u) => {
                    crate::repos::authorize(&ctx.pool, repo, u, "codecommit:GitPull").await?
                }
                None => crate::repos::find(&ctx.pool, repo).await?.ok_or_else(|| {
                    Error::NotFound(format!("the repository {repo} no longer exists"))
                })?,
            };
            if commit.is_empty()
                || commit.len() > 64
                || !commit
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/-_.^~".contains(c))
                || commit.starts_with('-')
            {
                return Err(Error::Invalid {
                    field: "commit",
                    message: format!("{commit:?} is not a commit"),
                });
            }
            let (dir, _guard) = crate::repos::working_copy(ctx, locks, &r, false).await?;
            let spec = format!("{commit}^{{commit}}");
            let o = git(&dir, &["rev-parse", "--verify", "--quiet", &spec]).await?;
            if !o.status.success() {
                return Err(Error::Invalid {
                    field: "commit",
                    message: format!("no commit {commit} in {repo}"),
                });
            }
            let full = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let o = tokio::process::Command::new("git")
                .arg("-C")
                .arg(&dir)
                // Modes as git records them (0644, 0755), not git's default
                // group-writable 0664.
                .args(["-c", "tar.umask=022", "archive", "--format=tar", "-o"])
                .arg(out)
                .arg(&full)
                .output()
                .await
                .map_err(|e| Error::Internal(format!("cannot run git: {e}")))?;
            if !o.status.success() {
                return Err(Error::Internal(format!(
                    "git archive failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
            Ok(Revision {
                repo: Some(r.name),
                commit: Some(full),
                build_id: None,
            })
        }
        (None, None, Some(id)) => {
            let b = match user {
                Some(u) => crate::builds::build_for(&ctx.pool, u, id).await?,
                None => crate::builds::find_build(&ctx.pool, id)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("the build {id} no longer exists")))?,
            };
            if b.status != "SUCCEEDED" {
                return Err(unprocessable(format!(
                    "build {id} is {}; only a build that succeeded can be deployed",
                    b.status
                )));
            }
            let dir = crate::builds::build_dir(&ctx.settings.data_dir, id).join("artifacts");
            if !dir.is_dir() {
                return Err(unprocessable(format!(
                    "build {id} kept no artifacts (its buildspec has no artifacts section)"
                )));
            }
            let out = out.to_path_buf();
            tokio::task::spawn_blocking(move || tar_dir(&dir, &out))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| Error::Internal(format!("cannot bundle the artifacts: {e}")))?;
            Ok(Revision {
                repo: None,
                commit: None,
                build_id: Some(b.id),
            })
        }
        _ => Err(Error::Invalid {
            field: "revision",
            message: "a revision is {\"repo\", \"commit\"} or {\"build_id\"}".into(),
        }),
    }
}

/// A tar of `dir` that is the same bytes every time: sorted, fixed times
/// and owners, regular files and directories only (a build's artifacts
/// hold nothing else).
fn tar_dir(dir: &Path, out: &Path) -> std::io::Result<()> {
    fn walk(base: &Path, rel: &Path, b: &mut tar::Builder<std::fs::File>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(base.join(rel))?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let ft = e.file_type()?;
            let mut h = tar::Header::new_ustar();
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, &r, std::io::empty())?;
                walk(base, &r, b)?;
            } else if ft.is_file() {
                use std::os::unix::fs::PermissionsExt;
                let f = std::fs::File::open(e.path())?;
                let m = f.metadata()?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if m.permissions().mode() & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                });
                h.set_size(m.len());
                b.append_data(&mut h, &r, f)?;
            }
        }
        Ok(())
    }
    let mut b = tar::Builder::new(std::fs::File::create(out)?);
    walk(dir, Path::new(""), &mut b)?;
    b.into_inner()?.sync_all()
}

fn sha256_file(p: &Path) -> std::io::Result<(String, i64)> {
    let mut f = std::fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0i64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as i64;
        h.update(&buf[..k]);
    }
    Ok((hex::encode(h.finalize()), n))
}

/// Reads `appspec.yml` out of a bundle and checks it, and that its hook
/// scripts are in the bundle: the same problems the agent would meet, at
/// once and with positions.
fn check_bundle(tar: &Path) -> std::result::Result<(), String> {
    let f = std::fs::File::open(tar).map_err(|e| e.to_string())?;
    let mut a = tar::Archive::new(f);
    let mut names = std::collections::HashSet::new();
    let mut text = None;
    for e in a.entries().map_err(|e| e.to_string())? {
        let mut e = e.map_err(|e| format!("the bundle is damaged: {e}"))?;
        let path = e
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if matches!(path.as_str(), "appspec.yml" | "appspec.yaml") && text.is_none() {
            let mut s = String::new();
            e.by_ref()
                .take(MAX_APPSPEC)
                .read_to_string(&mut s)
                .map_err(|_| "appspec.yml is not UTF-8 text".to_string())?;
            text = Some(s);
        }
        names.insert(path.trim_end_matches('/').to_string());
    }
    let text = text.ok_or("the revision has no appspec.yml at its root")?;
    let (spec, diags) = nubo_runner::appspec::parse(&text);
    let mut errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == nubo_runner::appspec::Severity::Error)
        .map(|d| d.render("appspec.yml"))
        .collect();
    if let Some(spec) = spec {
        for (event, hooks) in &spec.hooks {
            for h in hooks {
                if !names.contains(&h.location) {
                    errors.push(format!(
                        "appspec.yml:{}:{}: error: {}: the script {} is not in the bundle",
                        h.pos.line,
                        h.pos.col,
                        event.name(),
                        h.location
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the revision's appspec.yml is not valid:\n{}",
            errors.join("\n")
        ))
    }
}

/// A scratch file for a bundle, removed when dropped.
pub struct Scratch(pub PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn scratch(ctx: &Ctx) -> Result<Scratch> {
    let dir = ctx.settings.data_dir.join("tmp").join("bundles");
    std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Scratch(dir.join(format!("{}.tar", crate::db::new_id()))))
}

/// Checks that `user` may deploy the revision and that it is deployable
/// (an appspec.yml that validates, its scripts present); answers it
/// resolved (a full commit id) with its bundle's hash.
pub async fn check(
    ctx: &Ctx,
    locks: &crate::repos::Locks,
    user: &User,
    rev: &Revision,
) -> Result<Checked> {
    let tmp = scratch(ctx)?;
    let resolved = write_bundle(ctx, locks, Some(user), rev, &tmp.0).await?;
    let path = tmp.0.clone();
    let (sha256, size, problems) = tokio::task::spawn_blocking(move || {
        let (sha, size) = sha256_file(&path)?;
        Ok::<_, std::io::Error>((sha, size, check_bundle(&path)))
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| Error::Internal(e.to_string()))?;
    problems.map_err(unprocessable)?;
    Ok(Checked {
        revision: resolved,
        sha256,
        size,
    })
}
