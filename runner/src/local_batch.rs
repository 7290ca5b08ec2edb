//! A batch build on this machine (`nubo build --local` with a `batch:`
//! buildspec): its builds one after another in an order their dependencies
//! allow, each with the local runner, its log lines prefixed by its
//! identifier, its artifacts in `<artifacts>/<identifier>/`.

use std::path::Path;

use crate::batch::{self, Batch, State};
use crate::buildspec::Buildspec;
use crate::local::{self, Options, Outcome};

/// How a batch ended, and each build in it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchOutcome {
    pub status: String,
    /// (identifier, status, why it did not run or failed early).
    pub builds: Vec<(String, String, Option<String>)>,
}

/// The base options of every build: source, secrets, timeout, caches;
/// `spec` is ignored (each build has its own).
pub struct BatchOptions<'a> {
    pub base: &'a Options,
    /// The batch buildspec itself (used by builds that name no buildspec).
    pub own: &'a Buildspec,
}

/// Reads a build's buildspec (a path in the source).
fn load(source: &Path, path: &str) -> Result<Buildspec, String> {
    let full = source.join(path);
    let text = std::fs::read_to_string(&full)
        .map_err(|e| format!("cannot read the buildspec {path}: {e}"))?;
    let (spec, diags) = crate::buildspec::parse(&text);
    spec.ok_or_else(|| {
        let first = diags
            .iter()
            .find(|d| d.severity == crate::buildspec::Severity::Error)
            .map(|d| d.render(path))
            .unwrap_or_default();
        format!("the buildspec {path} is not valid: {first}")
    })
}

/// The buildspec a build of the batch runs, or why it cannot run.
pub fn child_spec(
    source: &Path,
    own: &Buildspec,
    b: &batch::BatchBuild,
) -> Result<Buildspec, String> {
    if b.privileged_mode {
        return Err("privileged-mode is refused: Nubo's builds have no Docker daemon".into());
    }
    let spec = match &b.buildspec {
        Some(path) => load(source, path)?,
        None => own.clone(),
    };
    if spec.phases.is_empty() {
        return Err(format!(
            "{} names no buildspec and the batch buildspec has no phases",
            b.identifier
        ));
    }
    Ok(Buildspec {
        batch: None,
        ..spec
    })
}

/// The variables a build of the batch gets on top of the overrides.
pub fn child_variables(b: &batch::BatchBuild) -> Vec<(String, String)> {
    let mut v = b.variables.clone();
    v.push((
        "CODEBUILD_BATCH_BUILD_IDENTIFIER".into(),
        b.identifier.clone(),
    ));
    v.push(("CODEBUILD_BUILD_BATCH_TRIGGERED".into(), "true".into()));
    v
}

/// Runs the batch; every log line goes to `sink`, prefixed `[identifier] `.
pub fn run(o: &BatchOptions, batch: &Batch, sink: &mut dyn FnMut(&str)) -> BatchOutcome {
    let n = batch.builds.len();
    let mut states = vec![State::Pending; n];
    let mut notes: Vec<Option<String>> = vec![None; n];
    let mut statuses: Vec<String> = vec!["PENDING".into(); n];
    sink(&format!(
        "[Batch] {} {} with {n} builds",
        local::now_stamp(),
        batch.kind
    ));
    loop {
        let step = batch::step(batch, &states);
        for (i, why) in &step.skip {
            states[*i] = State::Stopped;
            statuses[*i] = "STOPPED".into();
            notes[*i] = Some(why.clone());
            sink(&format!("[{}] {why}", batch.builds[*i].identifier));
        }
        if let Some(done) = step.done {
            sink(&format!("[Batch] {} Batch {done}", local::now_stamp()));
            return BatchOutcome {
                status: done.into(),
                builds: batch
                    .builds
                    .iter()
                    .zip(statuses)
                    .zip(notes)
                    .map(|((b, s), n)| (b.identifier.clone(), s, n))
                    .collect(),
            };
        }
        // One at a time: the next that may start.
        let Some(&i) = step.start.first() else {
            if step.skip.is_empty() {
                // Nothing can move (cannot happen with a checked graph).
                return BatchOutcome {
                    status: "FAILED".into(),
                    builds: vec![],
                };
            }
            continue;
        };
        let b = &batch.builds[i];
        let id = b.identifier.clone();
        let outcome = match child_spec(&o.base.source, o.own, b) {
            Err(why) => {
                sink(&format!("[{id}] {why}"));
                notes[i] = Some(why);
                None
            }
            Ok(spec) => {
                if let Some(image) = &b.image {
                    sink(&format!(
                        "[{id}] image {image} is not used by the local runner"
                    ));
                }
                let mut overrides = o.base.overrides.clone();
                overrides.extend(child_variables(b));
                let opts = Options {
                    source: o.base.source.clone(),
                    spec,
                    overrides,
                    secrets: o.base.secrets.clone(),
                    artifacts_dir: o.base.artifacts_dir.as_ref().map(|d| d.join(&id)),
                    timeout: o.base.timeout,
                    project: o.base.project.clone(),
                    initiator: o.base.initiator.clone(),
                    image: o.base.image.clone(),
                    log_cap: o.base.log_cap,
                    cancel: o.base.cancel.clone(),
                    announce_source: o.base.announce_source,
                    cache_dir: o.base.cache_dir.clone(),
                };
                let outcome: Outcome =
                    local::run(&opts, &mut |line| sink(&format!("[{id}] {line}")));
                Some(outcome)
            }
        };
        let status = outcome
            .as_ref()
            .map(|o| o.status.clone())
            .unwrap_or_else(|| "FAILED".into());
        states[i] = State::from_status(&status);
        statuses[i] = status;
    }
}
