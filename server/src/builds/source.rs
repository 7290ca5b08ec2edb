//! The source step of a build (CodeBuild's DOWNLOAD_SOURCE): the checkout
//! of the branch or commit from the repository's working copy, the
//! buildspec (a batch build's own, the project's inline one, or the file),
//! and the secrets and parameters it reads.

use super::run::{Job, Source};
use super::*;

/// The source of `job`, or why there is none (the build then fails in
/// DOWNLOAD_SOURCE with that reason).
pub(super) async fn download(
    ctx: &Ctx,
    running: &Running,
    job: &Job,
) -> Result<std::result::Result<Source, String>> {
    let commit = match checkout(ctx, running, &job.project, &job.build, &job.src).await {
        Ok(commit) => commit,
        Err(why) => return Ok(Err(why)),
    };
    let inputs = match super::inputs::materialize(ctx, job).await? {
        Ok(list) => list,
        Err(why) => return Ok(Err(why)),
    };
    sqlx::query(
        "UPDATE builds SET commit_sha = $1, current_phase = 'DOWNLOAD_SOURCE' WHERE id = $2",
    )
    .bind(&commit)
    .bind(&job.id)
    .execute(&ctx.pool)
    .await?;
    let (text, spec) = match buildspec(job) {
        Ok(found) => found,
        Err(why) => return Ok(Err(why)),
    };
    match resolve_secrets(&ctx.pool, &ctx.master, &job.owner, &spec).await {
        Ok(secrets) => Ok(Ok(Source {
            spec,
            text,
            secrets,
            inputs,
        })),
        Err(e) => Ok(Err(format!("DECRYPTED_VARIABLES_ERROR: {e}"))),
    }
}

/// The buildspec the build runs, read, checked (its diagnostics in the
/// log) and with the batch rules applied.
fn buildspec(
    job: &Job,
) -> std::result::Result<(String, nubo_runner::buildspec::Buildspec), String> {
    let project = &job.project;
    let own_path = job.child.as_ref().and_then(|(_, c)| c.buildspec.clone());
    let text = match (&own_path, &project.inline_buildspec) {
        (Some(path), _) => read_buildspec(&job.src, path, &job.build.branch)?,
        (None, Some(inline)) => inline.clone(),
        (None, None) => read_buildspec(&job.src, &project.buildspec_path, &job.build.branch)?,
    };
    let (parsed, diags) = nubo_runner::buildspec::parse(&text);
    let shown = match (&own_path, &project.inline_buildspec) {
        (Some(path), _) => path.as_str(),
        (None, Some(_)) => "buildspec (inline)",
        (None, None) => project.buildspec_path.as_str(),
    };
    for d in &diags {
        job.log.line(&d.render(shown));
    }
    let spec = parsed.ok_or_else(|| "YAML_FILE_ERROR: the buildspec is not valid".to_string())?;
    let spec = batch_rules(spec, job.child.as_ref().map(|(_, c)| c))?;
    Ok((text, spec))
}

/// Resolves the buildspec's parameter-store and secrets-manager entries,
/// as far as the project's owner may read them.
async fn resolve_secrets(
    pool: &SqlitePool,
    master: &MasterKey,
    owner: &User,
    spec: &nubo_runner::buildspec::Buildspec,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (var, name) in &spec.env.parameter_store {
        let value = crate::params::value_for(pool, master, owner, "parameter", name, var).await?;
        out.push((var.clone(), value));
    }
    for (var, reference) in &spec.env.secrets_manager {
        let mut parts = reference.splitn(2, ':');
        let id = parts.next().unwrap_or_default();
        let key = parts
            .next()
            .and_then(|r| r.split(':').next())
            .filter(|k| !k.is_empty());
        let value = crate::params::value_for(pool, master, owner, "secret", id, var).await?;
        let value = match key {
            None => value,
            Some(k) => serde_json::from_str::<serde_json::Value>(&value)
                .ok()
                .and_then(|v| v.get(k).cloned())
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .ok_or_else(|| format!("secret {id} has no JSON key {k} (for {var})"))?,
        };
        out.push((var.clone(), value));
    }
    Ok(out)
}

/// What a build does with a buildspec's `batch:`: a batch's own build runs
/// the phases (the batch is the server's work); a build started alone from
/// a batch-only buildspec has nothing to run.
fn batch_rules(
    spec: nubo_runner::buildspec::Buildspec,
    child: Option<&crate::builds::batches::Child>,
) -> std::result::Result<nubo_runner::buildspec::Buildspec, String> {
    if child.is_some_and(|c| c.privileged_mode) {
        return Err(
            "CLIENT_ERROR: privileged-mode is refused: Nubo's builds have no Docker daemon".into(),
        );
    }
    let is_batch = spec.batch.is_some();
    let spec = nubo_runner::buildspec::Buildspec {
        batch: None,
        ..spec
    };
    if spec.phases.is_empty() && is_batch {
        return Err(match child {
            Some(_) => "YAML_FILE_ERROR: this build names no buildspec and the batch buildspec has no phases".into(),
            None => "YAML_FILE_ERROR: this is a batch buildspec; start the project again to run its batch".into(),
        });
    }
    Ok(spec)
}

/// The buildspec from the checkout: the repository controls it, so it is
/// read without following links (a link to a host file would otherwise be
/// read and quoted in the log) and at most 1 MiB.
fn read_buildspec(src: &Path, path: &str, branch: &str) -> std::result::Result<String, String> {
    match crate::safe_fs::read_capped(src, path, 1 << 20) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| format!("YAML_FILE_ERROR: the buildspec {path} is not UTF-8 text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "YAML_FILE_ERROR: no buildspec at {path} on {branch}"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Err(format!(
            "YAML_FILE_ERROR: the buildspec {path} is larger than 1 MiB"
        )),
        Err(_) => Err(format!(
            "YAML_FILE_ERROR: the buildspec {path} is a symbolic link or not a regular file; builds read only a regular file of the repository"
        )),
    }
}

/// Clones the repository's working copy and checks out the commit (or the
/// branch's head); answers the commit id, or why it could not.
async fn checkout(
    ctx: &Ctx,
    running: &Running,
    project: &Project,
    build: &Build,
    src: &Path,
) -> std::result::Result<String, String> {
    let repo = crate::repos::find(&ctx.pool, &project.repo)
        .await
        .map_err(|e| e.public_message())?
        .ok_or("CLIENT_ERROR: the source repository no longer exists")?;
    let (cache, _) = crate::repos::working_copy(ctx, &running.repos, &repo, false)
        .await
        .map_err(|e| e.public_message())?;
    let _ = std::fs::remove_dir_all(src);
    let out = tokio::process::Command::new("git")
        .args(["clone", "-q", "--no-hardlinks", "--no-checkout"])
        .arg(&cache)
        .arg(src)
        .output()
        .await
        .map_err(|e| format!("CLIENT_ERROR: cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "CLIENT_ERROR: cannot clone {}: {}",
            project.repo,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let target = match &build.commit {
        Some(c) => c.clone(),
        None => format!("origin/{}", build.branch),
    };
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(src)
        .args(["checkout", "-q", "--detach", &target, "--"])
        .output()
        .await
        .map_err(|e| format!("CLIENT_ERROR: cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(match &build.commit {
            Some(c) => format!("CLIENT_ERROR: no commit {c} in {}", project.repo),
            None => format!(
                "CLIENT_ERROR: no branch {} in {}",
                build.branch, project.repo
            ),
        });
    }
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(src)
        .args(["rev-parse", "HEAD"])
        .output()
        .await
        .map_err(|e| format!("CLIENT_ERROR: cannot run git: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
