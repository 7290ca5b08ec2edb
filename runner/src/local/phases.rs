//! The build's steps after its environment: the phases with CodeBuild's
//! failure rules and log lines, test reports, exported variables,
//! artifacts and the outcome.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use super::session::{lookup_user, User};
use super::shell::{Failure, Runner};
use super::{Options, Outcome, PhaseReport};
use crate::buildspec::{OnFailure, Phase, PhaseName, Version};

/// How the build is going, phase by phase.
pub(super) struct Progress {
    reports: Vec<PhaseReport>,
    succeeding: bool,
    pub timed_out: bool,
    pub stopped: bool,
    /// A failed INSTALL or PRE_BUILD (without `on-failure: CONTINUE`):
    /// the build goes straight to FINALIZING.
    skipped: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            reports: Vec::new(),
            succeeding: true,
            timed_out: false,
            stopped: false,
            skipped: false,
        }
    }

    /// No more phases run (nor reports, nor artifacts).
    pub fn over(&self) -> bool {
        self.skipped || self.timed_out || self.stopped
    }

    /// Every phase so far succeeded, and the build was neither stopped nor
    /// timed out.
    pub fn going_well(&self) -> bool {
        self.succeeding && !self.timed_out && !self.stopped
    }

    fn report(&mut self, phase: &str, status: &str, started: Instant) {
        self.reports.push(PhaseReport {
            phase: phase.to_string(),
            status: status.to_string(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
}

/// The users of `run-as` (the build's and each phase's), looked up once;
/// or why they cannot be used.
pub(super) struct RunAs {
    users: HashMap<String, User>,
    error: Option<String>,
}

impl RunAs {
    pub fn resolve(opts: &Options) -> RunAs {
        let mut users = HashMap::new();
        let mut error = None;
        let euid = unsafe { libc::geteuid() };
        for name in opts
            .spec
            .run_as
            .iter()
            .chain(opts.spec.phases.iter().filter_map(|p| p.run_as.as_ref()))
        {
            match lookup_user(name) {
                Some(u) if euid == 0 || u.uid == euid => {
                    users.insert(name.clone(), u);
                }
                Some(_) => {
                    error = Some(format!(
                        "run-as {name}: the runner must run as root to switch users"
                    ))
                }
                None => error = Some(format!("run-as {name}: no such user")),
            }
        }
        RunAs { users, error }
    }

    /// Whom the build runs as, outside a phase's own `run-as`.
    pub fn of_build(&self, opts: &Options) -> Option<User> {
        opts.spec
            .run_as
            .as_ref()
            .and_then(|n| self.users.get(n).cloned())
    }

    fn of_phase(&self, opts: &Options, phase: Option<&Phase>) -> Option<User> {
        phase
            .and_then(|p| p.run_as.as_ref())
            .or(opts.spec.run_as.as_ref())
            .and_then(|n| self.users.get(n).cloned())
    }
}

impl Runner<'_> {
    /// The phases before the buildspec's: the caller provisioned and
    /// fetched the source.
    pub(super) fn download_source(&mut self, progress: &mut Progress) {
        for pre in ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE"] {
            progress.report(pre, "SUCCEEDED", Instant::now());
        }
        if self.opts.announce_source {
            let (image, source) = (self.opts.image.clone(), self.opts.source.clone());
            self.container(&format!("Running on {image} as the local runner"));
            self.container("Entering phase DOWNLOAD_SOURCE");
            self.container(&format!("CODEBUILD_SRC_DIR={}", source.display()));
            self.container("Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED");
        }
    }

    /// Runs one phase of the buildspec (its commands, retries and
    /// `finally`), logs how it ended and records it in `progress`.
    pub(super) fn phase(&mut self, name: PhaseName, run_as: &RunAs, progress: &mut Progress) {
        let opts = self.opts;
        let started = Instant::now();
        self.container(&format!("Entering phase {}", name.upper()));
        let phase = opts.spec.phase(name).cloned();
        self.switch_user(run_as.of_phase(opts, phase.as_ref()));
        self.internal(&format!(
            "export CODEBUILD_BUILD_SUCCEEDING={}",
            if progress.succeeding { 1 } else { 0 }
        ));
        let result = match (&run_as.error, &phase) {
            (Some(why), _) => {
                self.container(why);
                Err(Failure::Command(format!("run-as ({why})"), 1))
            }
            (None, Some(phase)) => self.attempts(name, phase),
            (None, None) => Ok(()),
        };
        let status = self.phase_complete(name, &result);
        progress.report(name.upper(), status, started);
        if result.is_err() {
            progress.succeeding = false;
            progress.timed_out |= matches!(result, Err(Failure::TimedOut));
            progress.stopped |= matches!(result, Err(Failure::Stopped));
            let cont = phase
                .as_ref()
                .is_some_and(|p| p.on_failure == OnFailure::Continue);
            if !cont && matches!(name, PhaseName::Install | PhaseName::PreBuild) {
                progress.skipped = true;
            }
        }
    }

    /// Changing user takes a new shell session.
    fn switch_user(&mut self, wanted: Option<User>) {
        if wanted == self.user {
            return;
        }
        self.session = None;
        self.user = wanted;
        let who = self
            .user
            .as_ref()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| "the runner's user".into());
        self.container(&format!("Running as {who} in a new shell session"));
    }

    /// The phase's commands then its `finally`, again on failure as often
    /// as `on-failure: RETRY-n` allows (never after a timeout or a stop).
    fn attempts(&mut self, name: PhaseName, phase: &Phase) -> Result<(), Failure> {
        let attempts = match phase.on_failure {
            OnFailure::Retry(n) => n + 1,
            _ => 1,
        };
        let mut result = Ok(());
        for attempt in 1..=attempts {
            if attempt > 1 {
                self.container(&format!(
                    "Retrying phase {} (attempt {attempt} of {attempts})",
                    name.upper()
                ));
            }
            result = self.commands(&phase.commands);
            let fin = self.commands(&phase.finally);
            if result.is_ok() {
                result = fin;
            }
            if result.is_ok() || matches!(result, Err(Failure::TimedOut | Failure::Stopped)) {
                break;
            }
        }
        result
    }

    /// CodeBuild's closing lines of a phase; answers its status.
    fn phase_complete(&mut self, name: PhaseName, result: &Result<(), Failure>) -> &'static str {
        let status = match result {
            Ok(()) => "SUCCEEDED",
            Err(Failure::TimedOut) => "TIMED_OUT",
            Err(Failure::Stopped) => "STOPPED",
            Err(_) => "FAILED",
        };
        self.container(&format!("Phase complete: {} State: {status}", name.upper()));
        match result {
            Ok(()) => self.container("Phase context status code:  Message: "),
            Err(Failure::Command(cmd, code)) => self.container(&format!(
                "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: {cmd}. Reason: exit status {code}"
            )),
            Err(Failure::TimedOut) => {
                let secs = self.opts.timeout.as_secs();
                self.container(&format!(
                    "Phase context status code: BUILD_TIMED_OUT Message: Build has timed out after {secs} seconds"
                ))
            }
            Err(Failure::Stopped) => {
                self.container("Phase context status code: BUILD_STOPPED Message: The build was stopped")
            }
        }
        status
    }

    /// The JUnit report groups (most useful when the build failed), read
    /// after POST_BUILD.
    pub(super) fn test_reports(&mut self) -> Vec<crate::reports::Report> {
        let opts = self.opts;
        let mut out = Vec::new();
        for group in opts.spec.reports.iter().filter(|g| g.format == "JUNITXML") {
            let files = crate::artifacts::collect(&opts.source, &group.files).unwrap_or_default();
            let report = crate::reports::collect(&group.name, &files);
            self.container(&format!(
                "Report group {}: {} files, {} tests, {} passed, {} failed, {} skipped",
                report.group,
                report.files,
                report.total,
                report.passed,
                report.failed,
                report.skipped
            ));
            for e in report.errors.clone() {
                self.container(&format!("Report group {}: {e}", report.group));
            }
            out.push(report);
        }
        out
    }

    /// Reads the exported variables' values at the end of the build (the
    /// shell prints them, encoded, for the session to collect).
    pub(super) fn export_variables(&mut self) {
        let opts = self.opts;
        if opts.spec.env.exported_variables.is_empty() || opts.spec.version != Version::V02 {
            return;
        }
        let nonce = self.session().map(|s| s.nonce.clone()).unwrap_or_default();
        let mut script = String::new();
        for name in &opts.spec.env.exported_variables {
            script.push_str(&format!(
                "printf '%s_EXPORT:%s:%s\\n' '{nonce}' '{name}' \"$(printf %s \"${{{name}}}\" | base64 | tr -d '\\n')\"\n"
            ));
        }
        let _ = self.run(&script);
    }

    /// UPLOAD_ARTIFACTS: the primary artifact into the artifacts dir, each
    /// secondary into its own folder there; answers the files written.
    pub(super) fn upload_artifacts(&mut self, progress: &mut Progress) -> usize {
        let opts = self.opts;
        let started = Instant::now();
        self.container("Entering phase UPLOAD_ARTIFACTS");
        let mut ok = true;
        let mut written = 0;
        if let (Some(spec), Some(dir)) = (&opts.spec.artifacts, &opts.artifacts_dir) {
            let mut targets: Vec<(String, crate::buildspec::Artifacts, PathBuf)> = Vec::new();
            if !spec.files.is_empty() {
                targets.push(("primary".into(), spec.clone(), dir.clone()));
            }
            for (id, s) in &spec.secondary {
                targets.push((id.clone(), s.clone(), dir.join(id)));
            }
            for (id, s, dest) in targets {
                match crate::artifacts::write(&opts.source, &s, &dest) {
                    Ok(n) => {
                        written += n;
                        self.container(&format!("Artifact {id}: {n} files to {}", dest.display()));
                    }
                    Err(e) => {
                        ok = false;
                        self.container(&format!(
                            "Phase context status code: CLIENT_ERROR Message: {e} (artifact {id})"
                        ));
                    }
                }
            }
        } else if opts.spec.artifacts.is_some() {
            self.container("No artifacts directory given: artifacts are not kept");
        }
        let status = if ok { "SUCCEEDED" } else { "FAILED" };
        self.container(&format!("Phase complete: UPLOAD_ARTIFACTS State: {status}"));
        progress.report("UPLOAD_ARTIFACTS", status, started);
        progress.succeeding &= ok;
        written
    }

    /// FINALIZING: the session ends and the outcome is told. An exported
    /// variable that carries a secret is masked like the log (exported
    /// values are shown on the build's page and in its API).
    pub(super) fn finish(
        &mut self,
        build_id: String,
        mut progress: Progress,
        artifacts: usize,
        reports: Vec<crate::reports::Report>,
    ) -> Outcome {
        let exported: Vec<(String, String)> = std::mem::take(&mut self.exported)
            .into_iter()
            .map(|(k, v)| {
                let masked = self.masker.mask(&v);
                (k, masked)
            })
            .collect();
        self.session = None;
        self.container("Entering phase FINALIZING");
        self.container("Phase complete: FINALIZING State: SUCCEEDED");
        let status = if progress.stopped {
            "STOPPED"
        } else if progress.timed_out {
            "TIMED_OUT"
        } else if progress.succeeding {
            "SUCCEEDED"
        } else {
            "FAILED"
        };
        self.container(&format!("Build {status}"));
        progress.report("FINALIZING", "SUCCEEDED", Instant::now());
        Outcome {
            build_id,
            succeeded: progress.going_well(),
            status: status.into(),
            phases: progress.reports,
            exported_variables: exported,
            artifacts,
            reports,
        }
    }
}
