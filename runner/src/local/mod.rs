//! Runs a buildspec on this machine, as CodeBuild's build container would:
//! phases in order with CodeBuild's failure rules, one shell session for
//! version 0.2 (the current directory and exported variables carry over)
//! and a fresh shell per command for 0.1, `finally` blocks, `on-failure`,
//! the `CODEBUILD_*` variables, masking of secret values, exported
//! variables, artifacts and a build timeout, with CodeBuild's log lines.
//!
//! `run` reads as its steps: the environment, the run-as users, the cache,
//! each phase (`phases.rs`), test reports, exported variables, artifacts
//! and the outcome; commands run in a shell session (`shell.rs`,
//! `session.rs`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::buildspec::{Buildspec, PhaseName};
use crate::mask::Masker;

mod phases;
mod session;
mod shell;

pub use session::{lookup_user, User};

use phases::Progress;
use shell::Runner;

pub struct Options {
    /// The source directory (CODEBUILD_SRC_DIR); commands start in it.
    pub source: PathBuf,
    pub spec: Buildspec,
    /// Variables that override the buildspec's (start-build overrides).
    pub overrides: Vec<(String, String)>,
    /// Secret values, set as variables and masked in the log.
    pub secrets: Vec<(String, String)>,
    /// Where artifacts go (primary in it, secondaries in `<dir>/<id>/`).
    pub artifacts_dir: Option<PathBuf>,
    pub timeout: Duration,
    pub project: String,
    pub initiator: String,
    pub image: String,
    /// The largest log kept, in bytes; the rest is dropped with a note.
    pub log_cap: usize,
    /// Set from elsewhere to stop the build (the running command is killed).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Log the DOWNLOAD_SOURCE phase (false when the caller fetched the
    /// source and logged it already).
    pub announce_source: bool,
    /// Where `cache` keys are kept (none: caches are not used).
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseReport {
    pub phase: String,
    pub status: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub build_id: String,
    pub succeeded: bool,
    pub status: String,
    pub phases: Vec<PhaseReport>,
    pub exported_variables: Vec<(String, String)>,
    pub artifacts: usize,
    /// Test reports, one per JUnit report group.
    #[serde(default)]
    pub reports: Vec<crate::reports::Report>,
}

/// The time as CodeBuild's `[Container]` log lines show it.
pub fn now_stamp() -> String {
    let f = time::macros::format_description!(
        "[year]/[month]/[day] [hour]:[minute]:[second].[subsecond digits:6]"
    );
    time::OffsetDateTime::now_utc()
        .format(&f)
        .unwrap_or_default()
}

fn base_env(opts: &Options, build_id: &str, start_ms: i64) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("NUBO_") && !k.starts_with("CODEBUILD_"))
        .collect();
    let source_version = std::process::Command::new("git")
        .arg("-C")
        .arg(&opts.source)
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut set = |k: &str, v: String| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v));
    };
    set("CODEBUILD_BUILD_ID", build_id.to_string());
    set("CODEBUILD_BUILD_NUMBER", "1".into());
    set(
        "CODEBUILD_BUILD_ARN",
        format!("arn:nubo:codebuild:::build/{build_id}"),
    );
    set("CODEBUILD_BUILD_IMAGE", opts.image.clone());
    set("CODEBUILD_INITIATOR", opts.initiator.clone());
    set("CODEBUILD_SRC_DIR", opts.source.display().to_string());
    set("CODEBUILD_SOURCE_VERSION", source_version.clone());
    set("CODEBUILD_RESOLVED_SOURCE_VERSION", source_version);
    set("CODEBUILD_START_TIME", start_ms.to_string());
    set("CODEBUILD_BUILD_SUCCEEDING", "1".into());
    // Precedence, lowest first: buildspec, overrides, secrets.
    for (k, v) in opts
        .spec
        .env
        .variables
        .iter()
        .chain(opts.overrides.iter())
        .chain(opts.secrets.iter())
    {
        set(k, v.clone());
    }
    env
}

/// Puts CodeBuild's helper for cache keys on PATH: `codebuild-hash-files
/// FILE...` prints one SHA-256 over the files (a script, so it works in sh
/// too).
fn add_hash_files_tool(env: &mut Vec<(String, String)>) {
    let tools = std::env::temp_dir().join(format!("nubo-tools-{}", std::process::id()));
    if std::fs::create_dir_all(&tools).is_err() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let script = tools.join("codebuild-hash-files");
    let _ = std::fs::write(
        &script,
        "#!/bin/sh\ncat -- \"$@\" | sha256sum | cut -d' ' -f1\n",
    );
    let _ = std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::set_permissions(&tools, std::fs::Permissions::from_mode(0o755));
    if let Some((_, path)) = env.iter_mut().find(|(k, _)| k == "PATH") {
        *path = format!("{}:{path}", tools.display());
    } else {
        env.push((
            "PATH".into(),
            format!("{}:/usr/local/bin:/usr/bin:/bin", tools.display()),
        ));
    }
}

/// Runs the build; every log line goes to `sink` (masked). Never panics on
/// a failing build: the outcome says how it ended.
pub fn run(opts: &Options, sink: &mut dyn FnMut(&str)) -> Outcome {
    let build_id = format!(
        "{}:{}",
        opts.project,
        hex::encode(rand::random::<[u8; 16]>())
    );
    let start_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let mut env = base_env(opts, &build_id, start_ms);
    add_hash_files_tool(&mut env);
    let mut r = Runner {
        opts,
        env,
        shell: opts.spec.shell(),
        session: None,
        user: None,
        deadline: std::time::Instant::now() + opts.timeout,
        masker: Masker::new(opts.secrets.iter().map(|(_, v)| v.clone())),
        sink,
        exported: Vec::new(),
    };
    let mut progress = Progress::new();
    r.download_source(&mut progress);
    let users = phases::RunAs::resolve(opts);
    r.user = users.of_build(opts);
    let cache = opts.spec.cache.clone().filter(|c| !c.paths.is_empty());
    if let (Some(c), Some(dir)) = (&cache, &opts.cache_dir) {
        if c.action.as_deref() != Some("save") {
            r.restore_cache(c, dir);
        }
    }
    for name in PhaseName::ALL {
        if progress.over() {
            break;
        }
        r.phase(name, &users, &mut progress);
    }
    let test_reports = if progress.over() {
        Vec::new()
    } else {
        r.test_reports()
    };
    // The cache is saved after a build that went well so far.
    if let (Some(c), Some(dir)) = (&cache, &opts.cache_dir) {
        if c.action.as_deref() != Some("restore") && progress.going_well() {
            r.save_cache(c, dir);
        }
    }
    if !progress.timed_out && !progress.stopped {
        r.export_variables();
    }
    let artifacts = if progress.over() {
        0
    } else {
        r.upload_artifacts(&mut progress)
    };
    r.finish(build_id, progress, artifacts, test_reports)
}
