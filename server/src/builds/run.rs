//! One build, run, as a sequence of named steps: [`prepare`] (the build's
//! record, its directory, log and live channel), the source
//! (`source::download`: checkout, buildspec, secrets), the runner's
//! options, the run itself (in the server's process here, or apart from it
//! in `apart.rs`), and [`record`] (the outcome, the batch moved on).

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use super::worker::Live;
use super::*;
use crate::builds::batches::Child;
use nubo_runner::local::{now_stamp, Options, Outcome};

/// A build's log: the file (line by line, flushed) and the live channel.
#[derive(Clone)]
pub(super) struct Log {
    writer: Arc<Mutex<(BufWriter<File>, u64)>>,
    tx: broadcast::Sender<LogEvent>,
}

impl Log {
    /// One line, as the runner wrote it.
    pub(super) fn line(&self, line: &str) {
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(w.0, "{line}");
        let _ = w.0.flush();
        let n = w.1;
        w.1 += 1;
        let _ = self.tx.send(LogEvent::Line(n, line.to_string()));
    }

    /// A line of the server's own, in CodeBuild's form.
    pub(super) fn say(&self, text: &str) {
        self.line(&format!("[Container] {} {text}", now_stamp()));
    }

    pub(super) fn phase(&self, phase: &str, status: &str, duration_ms: u64) {
        self.send_phase(PhaseInfo {
            phase: phase.into(),
            status: status.into(),
            duration_ms,
        });
    }

    pub(super) fn send_phase(&self, phase: PhaseInfo) {
        let _ = self.tx.send(LogEvent::Phase(phase));
    }

    fn end(&self, status: &str) {
        let _ = self.tx.send(LogEvent::End(status.to_string()));
    }
}

/// A build as it runs: what it builds, for whom, where, and its log.
pub(super) struct Job {
    pub(super) id: String,
    pub(super) build: Build,
    /// The project, with a batch build's own image and limits applied.
    pub(super) project: Project,
    /// The batch it is part of, and its settings there.
    pub(super) child: Option<(String, Child)>,
    pub(super) owner: User,
    /// `<data_dir>/builds/<id>` and its `src/`.
    pub(super) dir: PathBuf,
    pub(super) src: PathBuf,
    pub(super) log: Log,
    pub(super) cancel: Arc<AtomicBool>,
}

/// What the source step hands on.
pub(super) struct Source {
    pub(super) spec: nubo_runner::buildspec::Buildspec,
    /// The buildspec as read (a runner apart from the server reads it again).
    pub(super) text: String,
    pub(super) secrets: Vec<(String, String)>,
    /// Secondary input artifacts: `CODEBUILD_SRC_DIR_NAME` and the path
    /// under the source.
    pub(super) inputs: Vec<(String, String)>,
}

/// Runs the claimed build `id` to its end.
pub(super) async fn execute(ctx: &Ctx, running: &Running, id: &str) -> Result<()> {
    let job = prepare(ctx, running, id).await?;
    job.log.phase("PROVISIONING", "SUCCEEDED", 0);
    job.log.phase("DOWNLOAD_SOURCE", "IN_PROGRESS", 0);
    let fetch_started = Instant::now();
    let place = runner_for(&ctx.settings, &job.project, &job.owner);
    job.log.say(&describe(&place));
    job.log.say("Entering phase DOWNLOAD_SOURCE");
    let source = match &place {
        Ok(_) => super::source::download(ctx, running, &job).await?,
        Err(why) => Err(why.clone()),
    };
    let fetch_ms = fetch_started.elapsed().as_millis() as u64;
    let (place, source) = match (place, source) {
        (Ok(place), Ok(source)) => (place, source),
        (_, Err(why)) => return fail_download(ctx, running, &job, &why, fetch_ms).await,
        (Err(why), Ok(_)) => return fail_download(ctx, running, &job, &why, fetch_ms).await,
    };
    // The host path only where the build runs as a host process.
    job.log.say(&format!(
        "CODEBUILD_SRC_DIR={}",
        match &place {
            Runner::Server => job.src.display().to_string(),
            Runner::Apart(_) => "/codebuild/src".to_string(),
        }
    ));
    job.log
        .say("Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED");
    job.log.phase("DOWNLOAD_SOURCE", "SUCCEEDED", fetch_ms);
    let base = match &place {
        Runner::Server => job.src.display().to_string(),
        Runner::Apart(_) => "/codebuild/src".to_string(),
    };
    let inputs = source
        .inputs
        .iter()
        .map(|(var, rel)| (var.clone(), format!("{base}/{rel}")))
        .collect();
    let options = runner_options(ctx, &job, source.spec, source.secrets, inputs).await?;
    let (phases, follower) = follow_phases(ctx, &job);
    let (outcome, failure) = match place {
        Runner::Server => run_on_server(&job, options, phases).await?,
        Runner::Apart(place) => {
            super::apart::run(ctx, &job, place, options, &source.text, phases).await?
        }
    };
    let _ = follower.await;
    record(ctx, running, &job, outcome, failure).await
}

/// The build's record, the project it builds (with a batch build's own
/// image and limits), its owner, its directory, log and live channel.
async fn prepare(ctx: &Ctx, running: &Running, id: &str) -> Result<Job> {
    let build = find_build(&ctx.pool, id).await?.expect("claimed");
    let project: ProjectRow = sqlx::query_as(&format!("{PROJECT_SELECT} WHERE p.id = $1"))
        .bind(&build.project_id)
        .fetch_one(&ctx.pool)
        .await?;
    let mut project = project_from(project);
    let child = crate::builds::batches::child_of(&ctx.pool, id).await?;
    if let Some((_, c)) = &child {
        if c.image.is_some() {
            project.image = c.image.clone();
        }
        if let Some(m) = c.memory_mb {
            project.memory_mb = Some(m as i64);
        }
        if c.cpus.is_some() {
            project.cpus = c.cpus;
        }
    }
    let owner = crate::identity::accounts::find_by_id(&ctx.pool, &project.owner_id)
        .await?
        .ok_or_else(|| Error::NotFound("the project's owner no longer exists".into()))?;
    let dir = build_dir(&ctx.settings.data_dir, id);
    let src = dir.join("src");
    std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(e.to_string()))?;
    let (tx, _) = broadcast::channel(4096);
    let cancel = Arc::new(AtomicBool::new(false));
    running
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            id.to_string(),
            Live {
                channel: Some(tx.clone()),
                cancel: Some(cancel.clone()),
            },
        );
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("build.log"))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let log = Log {
        writer: Arc::new(Mutex::new((BufWriter::new(log_file), 0u64))),
        tx,
    };
    Ok(Job {
        id: id.to_string(),
        build,
        project,
        child,
        owner,
        dir,
        src,
        log,
        cancel,
    })
}

/// Where the build runs, for the log's first line.
fn describe(place: &std::result::Result<Runner, String>) -> String {
    use crate::builds::external::Place;
    match place {
        Ok(Runner::Apart(Place::Container { image })) => {
            format!("Running in an ephemeral container of {image}")
        }
        Ok(Runner::Apart(Place::Sandbox(_))) => "Running in the local sandbox".to_string(),
        Ok(Runner::Server) => "Running on the server's local runner (not confined: the project's owner is an administrator)".to_string(),
        Err(_) => "No runner for this build".to_string(),
    }
}

/// The source step failed: the build fails in DOWNLOAD_SOURCE, with why.
async fn fail_download(
    ctx: &Ctx,
    running: &Running,
    job: &Job,
    why: &str,
    fetch_ms: u64,
) -> Result<()> {
    job.log.phase("DOWNLOAD_SOURCE", "FAILED", fetch_ms);
    job.log.say("Phase complete: DOWNLOAD_SOURCE State: FAILED");
    job.log.say(&format!("Phase context status code: {why}"));
    let phases = vec![PhaseInfo {
        phase: "DOWNLOAD_SOURCE".into(),
        status: "FAILED".into(),
        duration_ms: 0,
    }];
    let ending = Ending {
        status: "FAILED",
        phases: &phases,
        exported: &[],
        artifacts: 0,
        reason: Some(why),
        reports: &[],
    };
    finish(ctx, &job.id, &ending).await?;
    job.log.end("FAILED");
    done(ctx, running, job).await
}

/// The local runner's options: variables (the project's, a batch build's,
/// the start request's; a marker for leftovers), the project's cache, the
/// timeout and the log cap.
async fn runner_options(
    ctx: &Ctx,
    job: &Job,
    spec: nubo_runner::buildspec::Buildspec,
    secrets: Vec<(String, String)>,
    inputs: Vec<(String, String)>,
) -> Result<Options> {
    if let Some(name) = spec.artifacts.as_ref().and_then(|a| a.name.clone()) {
        let _ = std::fs::write(job.dir.join("artifact-name"), name);
    }
    let mut overrides = job.project.env.clone();
    if let Some((_, c)) = &job.child {
        overrides.extend(c.variables.iter().cloned());
    }
    let json: String = sqlx::query_scalar("SELECT env_json FROM builds WHERE id = $1")
        .bind(&job.id)
        .fetch_one(&ctx.pool)
        .await?;
    let build_env: Vec<(String, String)> = serde_json::from_str(&json).unwrap_or_default();
    overrides.extend(build_env);
    overrides.extend(inputs);
    // CodeBuild's build number: the project's count (1, 2, ...).
    overrides.push((
        "CODEBUILD_BUILD_NUMBER".into(),
        job.build.number.to_string(),
    ));
    // Marks every process of this build, so a restart can find leftovers.
    overrides.push(("NUBO_BUILD_ID".into(), job.id.clone()));
    Ok(Options {
        source: job.src.clone(),
        spec,
        overrides,
        secrets,
        artifacts_dir: Some(job.dir.join("artifacts")),
        timeout: std::time::Duration::from_secs(job.project.timeout_minutes.max(1) as u64 * 60),
        project: job.project.name.clone(),
        initiator: job.build.initiator.clone(),
        image: "nubo/local".into(),
        log_cap: ctx.settings.build_log_cap_bytes,
        cancel: Some(job.cancel.clone()),
        announce_source: false,
        // Caches are kept per project.
        cache_dir: Some(project_cache(ctx, job)),
    })
}

pub(super) fn project_cache(ctx: &Ctx, job: &Job) -> PathBuf {
    ctx.settings
        .data_dir
        .join("build-cache")
        .join(&job.build.project_id)
}

/// Phase changes told by the log, recorded and sent live as they happen.
fn follow_phases(
    ctx: &Ctx,
    job: &Job,
) -> (
    tokio::sync::mpsc::UnboundedSender<PhaseInfo>,
    tokio::task::JoinHandle<()>,
) {
    let (phase_tx, mut phase_rx) = tokio::sync::mpsc::unbounded_channel::<PhaseInfo>();
    let (pool, build_id, log) = (ctx.pool.clone(), job.id.clone(), job.log.clone());
    let task = tokio::spawn(async move {
        while let Some(p) = phase_rx.recv().await {
            let _ = sqlx::query("UPDATE builds SET current_phase = $1 WHERE id = $2")
                .bind(&p.phase)
                .bind(&build_id)
                .execute(&pool)
                .await;
            log.send_phase(p);
        }
    });
    (phase_tx, task)
}

/// The local runner in the server's process (administrators' projects,
/// where no sandbox can be made).
async fn run_on_server(
    job: &Job,
    options: Options,
    phases: tokio::sync::mpsc::UnboundedSender<PhaseInfo>,
) -> Result<(Outcome, Option<String>)> {
    let log = job.log.clone();
    tokio::task::spawn_blocking(move || {
        let mut entered = None;
        nubo_runner::local::run(&options, &mut |line| {
            log.line(line);
            if let Some(p) = phase_of(line, &mut entered) {
                let _ = phases.send(p);
            }
        })
    })
    .await
    .map(|o| (o, None))
    .map_err(|e| Error::Internal(format!("the build runner panicked: {e}")))
}

/// The outcome recorded (status, phases, exported variables, artifacts,
/// reports, why), the end sent live, the batch moved on.
async fn record(
    ctx: &Ctx,
    running: &Running,
    job: &Job,
    outcome: Outcome,
    failure: Option<String>,
) -> Result<()> {
    let phases: Vec<PhaseInfo> = outcome
        .phases
        .iter()
        .map(|p| PhaseInfo {
            phase: p.phase.clone(),
            status: p.status.clone(),
            duration_ms: p.duration_ms,
        })
        .collect();
    let reason = failure.or_else(|| match outcome.status.as_str() {
        "STOPPED" => Some("stopped by a user".to_string()),
        "TIMED_OUT" => Some(format!(
            "timed out after {} minutes",
            job.project.timeout_minutes
        )),
        _ => None,
    });
    let ending = Ending {
        status: &outcome.status,
        phases: &phases,
        exported: &outcome.exported_variables,
        artifacts: outcome.artifacts as i64,
        reason: reason.as_deref(),
        reports: &outcome.reports,
    };
    finish(ctx, &job.id, &ending).await?;
    job.log.end(&outcome.status);
    done(ctx, running, job).await
}

/// After the end: the checkout removed, the build off the registry, its
/// batch moved on.
async fn done(ctx: &Ctx, running: &Running, job: &Job) -> Result<()> {
    let _ = std::fs::remove_dir_all(&job.src);
    running
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&job.id);
    if let Some((batch, _)) = &job.child {
        crate::builds::batches::advance(ctx, running, batch).await?;
    }
    Ok(())
}

/// How a build ended, as it is recorded.
struct Ending<'a> {
    status: &'a str,
    phases: &'a [PhaseInfo],
    exported: &'a [(String, String)],
    artifacts: i64,
    reason: Option<&'a str>,
    reports: &'a [nubo_runner::reports::Report],
}

async fn finish(ctx: &Ctx, id: &str, e: &Ending<'_>) -> Result<()> {
    // One statement: a reader never sees an ended build without its
    // reports (they were written after the status, and a client polling
    // for the end could read the build between the two).
    sqlx::query(
        "UPDATE builds SET status = $1, phases_json = $2, exported_json = $3, artifacts = $4,
             reason = $5, ended_at = $6, current_phase = 'COMPLETED', reports_json = $7 WHERE id = $8",
    )
    .bind(e.status)
    .bind(serde_json::to_string(e.phases).unwrap_or_default())
    .bind(serde_json::to_string(e.exported).unwrap_or_default())
    .bind(e.artifacts)
    .bind(e.reason)
    .bind(now_ms())
    .bind(serde_json::to_string(e.reports).unwrap_or_default())
    .bind(id)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

/// The name of a build's container or sandbox (and its control group).
pub(super) fn sandbox_name(id: &str) -> String {
    format!("nubo-build-{}", id.replace(':', "-"))
}

/// Where a build runs.
pub(super) enum Runner {
    /// Apart from the server: a container, or the local sandbox.
    Apart(crate::builds::external::Place),
    /// In the server's process (image-less builds with no sandbox here,
    /// for administrators' projects only).
    Server,
}

/// A container for a project with an image; else the local sandbox; else
/// the server itself, only when the project's owner is an administrator.
fn runner_for(
    settings: &crate::config::Settings,
    project: &Project,
    owner: &User,
) -> std::result::Result<Runner, String> {
    use crate::builds::external::Place;
    if let Some(image) = &project.image {
        return Ok(Runner::Apart(Place::Container {
            image: image.clone(),
        }));
    }
    match crate::sandbox::available(settings) {
        Ok(sandbox) => Ok(Runner::Apart(Place::Sandbox(sandbox))),
        Err(_) if owner.admin => Ok(Runner::Server),
        Err(why) => Err(format!(
            "CLIENT_ERROR: builds without an image run in the local sandbox, and none can be set up on this server ({why}); give the project an image, or ask an administrator to install bubblewrap"
        )),
    }
}

/// A phase change told by a log line (`Entering phase X`, `Phase complete:
/// X State: S`), with the time spent since it was entered.
pub fn phase_of(
    line: &str,
    entered: &mut Option<(String, std::time::Instant)>,
) -> Option<PhaseInfo> {
    if let Some(rest) = line.split("Entering phase ").nth(1) {
        let phase = rest.trim().to_string();
        *entered = Some((phase.clone(), std::time::Instant::now()));
        return Some(PhaseInfo {
            phase,
            status: "IN_PROGRESS".into(),
            duration_ms: 0,
        });
    }
    let rest = line.split("Phase complete: ").nth(1)?;
    let mut parts = rest.split(" State: ");
    let (phase, status) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let duration_ms = entered
        .as_ref()
        .filter(|(p, _)| p == phase)
        .map(|(_, t)| t.elapsed().as_millis() as u64)
        .unwrap_or(0);
    Some(PhaseInfo {
        phase: phase.to_string(),
        status: status.trim().to_string(),
        duration_ms,
    })
}
