//! A build run apart from the server (a container, or the local sandbox):
//! its `out/` directory (the buildspec, the secrets file the runner
//! deletes after reading), `nubo build`'s arguments and environment, the
//! limits, and the outcome read back as hostile.

use nubo_runner::local::{Options, Outcome};

use super::run::{phase_of, project_cache, sandbox_name, Job};
use super::*;
use crate::builds::external::{self, Ended, ExternalBuild, Place};

/// Runs `job` at `place`; answers the outcome, and why it failed when the
/// outcome cannot say.
pub(super) async fn run(
    ctx: &Ctx,
    job: &Job,
    place: Place,
    options: Options,
    spec_text: &str,
    phases: tokio::sync::mpsc::UnboundedSender<PhaseInfo>,
) -> Result<(Outcome, Option<String>)> {
    let out = job.dir.join("out");
    let external = prepare(ctx, job, place, &options, spec_text, &out)?;
    let mut entered = None;
    let log = job.log.clone();
    let mut on_line = |line: &str| {
        log.line(line);
        if let Some(p) = phase_of(line, &mut entered) {
            let _ = phases.send(p);
        }
    };
    let ended = external::run(&ctx.settings, external, &mut on_line).await;
    if let Ok(Ended::Stopped) = &ended {
        // Killed from outside: the log says where it stopped.
        if let Some((phase, started)) = entered.take() {
            job.log
                .say(&format!("Phase complete: {phase} State: STOPPED"));
            job.log
                .say("Phase context status code: BUILD_STOPPED Message: The build was stopped");
            let _ = phases.send(PhaseInfo {
                phase,
                status: "STOPPED".into(),
                duration_ms: started.elapsed().as_millis() as u64,
            });
        }
        job.log.say("Build STOPPED");
    }
    let kept = external::take_artifacts(&out, &job.dir.join("artifacts"), &mut |l| job.log.line(l));
    let outcome = external::read_outcome(&out).map(|mut o| {
        // What was kept, not what the build said it made.
        o.artifacts = kept;
        o
    });
    let _ = std::fs::remove_dir_all(&out);
    let empty = |status: &str| Outcome {
        build_id: job.id.clone(),
        succeeded: false,
        status: status.into(),
        phases: vec![],
        exported_variables: vec![],
        artifacts: 0,
        reports: vec![],
    };
    Ok(match (ended, outcome) {
        (Err(e), _) => (empty("FAILED"), Some(e.public_message())),
        (Ok(Ended::Stopped), _) => (empty("STOPPED"), None),
        (Ok(Ended::Exited(_)), Some(o)) => (o, None),
        (Ok(Ended::Exited(code)), None) => (
            empty("FAILED"),
            Some(format!(
                "the build ended with status {code} before finishing{}",
                if code == 137 {
                    " (killed: out of memory?)"
                } else {
                    ""
                }
            )),
        ),
    })
}

/// The out directory filled, and what the runner apart is given: its
/// arguments (variables among them), environment and limits.
fn prepare(
    ctx: &Ctx,
    job: &Job,
    place: Place,
    options: &Options,
    spec_text: &str,
    out: &Path,
) -> Result<ExternalBuild> {
    let project = &job.project;
    let image = match &place {
        Place::Container { image } => image.clone(),
        Place::Sandbox(_) => "nubo/local-sandbox".into(),
    };
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(out.join("buildspec.yml"), spec_text)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let secrets: std::collections::BTreeMap<_, _> = options.secrets.iter().cloned().collect();
    // Read (and removed) by the runner inside; what a killed server leaves
    // is removed at the next start (recover).
    crate::tls::write_private(
        &out.join("secrets.json"),
        serde_json::to_string(&secrets)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    let mut args: Vec<String> = [
        "--source",
        "/codebuild/src",
        "--buildspec",
        "/codebuild/out/buildspec.yml",
        "--artifacts",
        "/codebuild/out/artifacts",
        "--outcome",
        "/codebuild/out/outcome.json",
        "--secrets-file",
        "/codebuild/out/secrets.json",
        "--cache-dir",
        "/codebuild/cache",
        "--log-file",
        "/codebuild/out/build.log",
        // A batch's builds (and a batch buildspec started as one build) run
        // their phases: batches are the server's work.
        "--ignore-batch",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--timeout".into());
    args.push(format!("{}m", project.timeout_minutes));
    args.push("--log-cap".into());
    args.push(ctx.settings.build_log_cap_bytes.to_string());
    for (k, v) in options
        .overrides
        .iter()
        .filter(|(k, _)| k != "NUBO_BUILD_ID")
    {
        args.push("--env".into());
        args.push(format!("{k}={v}"));
    }
    let cache = project_cache(ctx, job);
    let _ = std::fs::create_dir_all(&cache);
    let home = match &place {
        Place::Container { .. } => "/root",
        Place::Sandbox(_) => "/tmp",
    };
    let s = &ctx.settings;
    Ok(ExternalBuild {
        name: sandbox_name(&job.id),
        place,
        src: job.src.clone(),
        out: out.to_path_buf(),
        cache,
        args,
        env: vec![
            ("NUBO_PROJECT".into(), project.name.clone()),
            ("NUBO_IMAGE".into(), image),
            ("NUBO_BUILD_ID".into(), job.id.clone()),
            ("HOME".into(), home.into()),
            (
                "PATH".into(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ),
        ],
        cancel: job.cancel.clone(),
        limits: crate::cgroup::Limits {
            memory_mb: project
                .memory_mb
                .map(|m| m as u64)
                .unwrap_or(s.workspace_memory_mb),
            cpus: project.cpus.unwrap_or(s.workspace_cpus),
            pids: project.pids.unwrap_or(s.workspace_pids),
        },
        hard_timeout: std::time::Duration::from_secs(
            project.timeout_minutes.max(1) as u64 * 60 + 300,
        ),
    })
}
