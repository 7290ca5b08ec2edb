//! Runs a buildspec on this machine, as CodeBuild's build container would:
//! phases in order with CodeBuild's failure rules, one shell session for
//! version 0.2 (the current directory and exported variables carry over)
//! and a fresh shell per command for 0.1, `finally` blocks, `on-failure`,
//! the `CODEBUILD_*` variables, masking of secret values, exported
//! variables, artifacts and a build timeout, with CodeBuild's log lines.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::buildspec::{Buildspec, OnFailure, PhaseName, Version};
use crate::mask::Masker;

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

enum Event {
    Line(String),
    Status(i32),
    Export(String, String),
    Eof,
}

/// One shell process fed commands on its standard input.
struct Session {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Event>,
    nonce: String,
}

impl Session {
    fn start(
        shell: &str,
        opts: &Options,
        env: &[(String, String)],
        user: Option<&User>,
    ) -> anyhow::Result<Session> {
        let mut fds = [0; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            anyhow::bail!("cannot make a pipe: {}", std::io::Error::last_os_error());
        }
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        use std::os::unix::process::CommandExt;
        let mut command = Process::new(shell);
        command
            .arg("-s")
            .current_dir(&opts.source)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(u) = user {
            command
                .env("HOME", &u.home)
                .env("USER", &u.name)
                .env("LOGNAME", &u.name);
            let (uid, gid) = (u.uid, u.gid);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    if libc::setgroups(1, &gid) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::from(write.try_clone()?))
            .stderr(Stdio::from(write))
            .process_group(0)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {shell}: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let nonce = format!("__NUBO_{}", hex::encode(rand::random::<[u8; 8]>()));
        let (tx, events) = mpsc::channel();
        let marker = nonce.clone();
        let cap = opts.log_cap;
        std::thread::spawn(move || {
            let mut reader = BufReader::new(std::fs::File::from(read));
            let mut buf = Vec::new();
            let mut logged = 0usize;
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                if let Some(at) = line.find(&marker) {
                    let (before, rest) = line.split_at(at);
                    if !before.is_empty() {
                        let _ = tx.send(Event::Line(before.to_string()));
                    }
                    let rest = &rest[marker.len()..];
                    if let Some(code) = rest.strip_prefix(':') {
                        let _ = tx.send(Event::Status(code.trim().parse().unwrap_or(1)));
                    } else if let Some(kv) = rest.strip_prefix("_EXPORT:") {
                        let (k, v) = kv.split_once(':').unwrap_or((kv, ""));
                        let v = base64::engine::general_purpose::STANDARD
                            .decode(v.trim())
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default();
                        let _ = tx.send(Event::Export(k.to_string(), v));
                    }
                    continue;
                }
                logged += line.len() + 1;
                if logged > cap {
                    if logged - line.len() - 1 <= cap {
                        let _ = tx.send(Event::Line(format!(
                            "[Container] {} Output beyond {cap} bytes is not kept",
                            now_stamp()
                        )));
                    }
                    continue;
                }
                let _ = tx.send(Event::Line(line.to_string()));
            }
            let _ = tx.send(Event::Eof);
        });
        Ok(Session {
            child,
            stdin,
            events,
            nonce,
        })
    }

    fn send(&mut self, text: &str) -> bool {
        self.stdin.write_all(text.as_bytes()).is_ok() && self.stdin.flush().is_ok()
    }

    fn kill(&mut self) {
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A user commands run as (`run-as`).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Looks a user up in /etc/passwd.
pub fn lookup_user(name: &str) -> Option<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[0] == name).then(|| User {
            name: f[0].to_string(),
            uid: f[2].parse().unwrap_or(u32::MAX),
            gid: f[3].parse().unwrap_or(u32::MAX),
            home: f[5].to_string(),
        })
    })
}

enum Ran {
    Exit(i32),
    TimedOut,
    Stopped,
}

struct Runner<'a> {
    opts: &'a Options,
    env: Vec<(String, String)>,
    shell: String,
    session: Option<Session>,
    /// Who the current session runs as (None: the runner's own user).
    user: Option<User>,
    deadline: Instant,
    masker: Masker,
    sink: &'a mut dyn FnMut(&str),
    exported: Vec<(String, String)>,
}

impl Runner<'_> {
    fn log(&mut self, line: &str) {
        let masked = self.masker.mask(line);
        (self.sink)(&masked);
    }

    fn container(&mut self, message: &str) {
        let line = format!("[Container] {} {message}", now_stamp());
        self.log(&line);
    }

    fn session(&mut self) -> anyhow::Result<&mut Session> {
        if self.session.is_none() {
            self.session = Some(Session::start(
                &self.shell,
                self.opts,
                &self.env,
                self.user.as_ref(),
            )?);
        }
        Ok(self.session.as_mut().expect("just made"))
    }

    /// Runs `text` in the session; logs its output; answers its exit status.
    fn run(&mut self, text: &str) -> Ran {
        let session = match self.session() {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                self.container(&msg);
                return Ran::Exit(127);
            }
        };
        let nonce = session.nonce.clone();
        let script = format!("{{\n{text}\n}} </dev/null\nprintf '%s:%s\\n' '{nonce}' \"$?\"\n");
        if !session.send(&script) {
            return self.shell_gone();
        }
        self.wait()
    }

    fn cancelled(&self) -> bool {
        self.opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn wait(&mut self) -> Ran {
        loop {
            if self.cancelled() {
                if let Some(mut s) = self.session.take() {
                    s.kill();
                }
                return Ran::Stopped;
            }
            let left = self
                .deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            let Some(session) = self.session.as_mut() else {
                return Ran::Exit(1);
            };
            match session.events.recv_timeout(left) {
                Ok(Event::Line(l)) => self.log(&l),
                Ok(Event::Status(code)) => return Ran::Exit(code),
                Ok(Event::Export(k, v)) => self.exported.push((k, v)),
                Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return self.shell_gone()
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() < self.deadline {
                        continue;
                    }
                    if let Some(mut s) = self.session.take() {
                        s.kill();
                    }
                    return Ran::TimedOut;
                }
            }
        }
    }

    /// The shell ended (`exit` in a command): its status is the command's,
    /// and the next command gets a new session.
    fn shell_gone(&mut self) -> Ran {
        let code = self
            .session
            .take()
            .and_then(|mut s| s.child.wait().ok())
            .map(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or(s.signal().map(|n| 128 + n)).unwrap_or(1)
            })
            .unwrap_or(1);
        if self.opts.spec.version == Version::V02 {
            self.container("The shell session ended; the next command starts a new one (directory and variables are reset)");
        }
        Ran::Exit(code)
    }

    /// Runs a list of commands; stops at the first failure. Answers the
    /// failure (command, exit status) if any, or a timeout.
    fn commands(&mut self, list: &[crate::buildspec::Command]) -> Result<(), Failure> {
        for cmd in list {
            if self.cancelled() {
                return Err(Failure::Stopped);
            }
            if Instant::now() >= self.deadline {
                return Err(Failure::TimedOut);
            }
            self.container(&format!("Running command {}", cmd.text));
            if self.opts.spec.version == Version::V01 {
                self.session = None;
            }
            let ran = self.run(&cmd.text);
            if self.opts.spec.version == Version::V01 {
                self.session = None;
            }
            match ran {
                Ran::Exit(0) => {}
                Ran::Exit(code) => {
                    self.container(&format!(
                        "Command did not exit successfully {} exit status {code}",
                        cmd.text
                    ));
                    return Err(Failure::Command(cmd.text.clone(), code));
                }
                Ran::TimedOut => return Err(Failure::TimedOut),
                Ran::Stopped => return Err(Failure::Stopped),
            }
        }
        Ok(())
    }

    /// Expands `expr` (variables, `$(...)`) in the build's shell.
    fn eval(&mut self, expr: &str) -> Option<String> {
        let nonce = self.session().ok()?.nonce.clone();
        let quoted = expr
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('`', "\\`");
        let script = format!(
            "printf '%s_EXPORT:%s:%s\\n' '{nonce}' '__NUBO_EVAL' \"$(printf %s \"{quoted}\" | base64 | tr -d '\\n')\"\n"
        );
        let _ = self.run(&script);
        let at = self
            .exported
            .iter()
            .rposition(|(k, _)| k == "__NUBO_EVAL")?;
        Some(self.exported.remove(at).1)
    }

    fn restore_cache(&mut self, cache: &crate::buildspec::Cache, dir: &std::path::Path) {
        let key = self
            .eval(cache.key.as_deref().unwrap_or("default"))
            .unwrap_or_default();
        let fallbacks: Vec<String> = cache
            .fallback_keys
            .iter()
            .filter_map(|k| self.eval(k))
            .filter(|k| !k.is_empty())
            .collect();
        match crate::cache::find(dir, &key, &fallbacks) {
            None => self.container(&format!("Cache {key} not found; starting without it")),
            Some((found, file)) => match crate::cache::restore(&file, &self.opts.source) {
                Ok(()) => self.container(&format!("Restored cache {found}")),
                Err(e) => self.container(&format!("Cache {found} could not be restored: {e}")),
            },
        }
    }

    fn save_cache(&mut self, cache: &crate::buildspec::Cache, dir: &std::path::Path) {
        let key = self
            .eval(cache.key.as_deref().unwrap_or("default"))
            .unwrap_or_default();
        match crate::cache::save(dir, &key, &self.opts.source, &cache.paths) {
            Ok(bytes) => self.container(&format!("Saved cache {key} ({bytes} bytes)")),
            Err(e) => self.container(&format!("Cache {key} was not saved: {e}")),
        }
    }

    fn internal(&mut self, text: &str) {
        if self.opts.spec.version == Version::V02 {
            let _ = self.run(text);
        }
    }
}

enum Failure {
    Command(String, i32),
    TimedOut,
    Stopped,
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
    // CodeBuild's helper for cache keys: `codebuild-hash-files FILE...`
    // prints one SHA-256 over the files. A script on PATH, so it works in sh too.
    let tools = std::env::temp_dir().join(format!("nubo-tools-{}", std::process::id()));
    if std::fs::create_dir_all(&tools).is_ok() {
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
    let mut r = Runner {
        opts,
        env,
        shell: opts.spec.shell(),
        session: None,
        user: None,
        deadline: Instant::now() + opts.timeout,
        masker: Masker::new(opts.secrets.iter().map(|(_, v)| v.clone())),
        sink,
        exported: Vec::new(),
    };
    let mut reports = Vec::new();
    let mut succeeding = true;
    let mut timed_out = false;
    let mut stopped = false;
    let phase_report = |name: &str, status: &str, started: Instant| PhaseReport {
        phase: name.to_string(),
        status: status.to_string(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    for pre in ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE"] {
        reports.push(phase_report(pre, "SUCCEEDED", Instant::now()));
    }
    if opts.announce_source {
        r.container(&format!("Running on {} as the local runner", opts.image));
        r.container("Entering phase DOWNLOAD_SOURCE");
        r.container(&format!("CODEBUILD_SRC_DIR={}", opts.source.display()));
        r.container("Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED");
    }
    // run-as: the build's user, or a phase's. Changing user takes a new
    // shell session.
    let mut run_as_error = None;
    let mut users = std::collections::HashMap::new();
    for name in opts
        .spec
        .run_as
        .iter()
        .chain(opts.spec.phases.iter().filter_map(|p| p.run_as.as_ref()))
    {
        match lookup_user(name) {
            Some(u) if unsafe { libc::geteuid() } == 0 || u.uid == unsafe { libc::geteuid() } => {
                users.insert(name.clone(), u);
            }
            Some(_) => {
                run_as_error = Some(format!(
                    "run-as {name}: the runner must run as root to switch users"
                ))
            }
            None => run_as_error = Some(format!("run-as {name}: no such user")),
        }
    }
    r.user = opts
        .spec
        .run_as
        .as_ref()
        .and_then(|n| users.get(n).cloned());
    let cache = opts.spec.cache.clone().filter(|c| !c.paths.is_empty());
    if let (Some(c), Some(dir)) = (&cache, &opts.cache_dir) {
        if c.action.as_deref() != Some("save") {
            r.restore_cache(c, dir);
        }
    }
    let mut skip_to_finalizing = false;
    for name in PhaseName::ALL {
        if skip_to_finalizing || timed_out || stopped {
            break;
        }
        let started = Instant::now();
        r.container(&format!("Entering phase {}", name.upper()));
        let phase = opts.spec.phase(name).cloned();
        let wanted = phase
            .as_ref()
            .and_then(|p| p.run_as.as_ref())
            .or(opts.spec.run_as.as_ref())
            .and_then(|n| users.get(n).cloned());
        if wanted != r.user {
            r.session = None;
            r.user = wanted;
            let who = r
                .user
                .as_ref()
                .map(|u| u.name.clone())
                .unwrap_or_else(|| "the runner's user".into());
            r.container(&format!("Running as {who} in a new shell session"));
        }
        r.internal(&format!(
            "export CODEBUILD_BUILD_SUCCEEDING={}",
            if succeeding { 1 } else { 0 }
        ));
        let mut result = Ok(());
        if let Some(why) = &run_as_error {
            r.container(why);
            result = Err(Failure::Command(format!("run-as ({why})"), 1));
        } else if let Some(phase) = &phase {
            let attempts = match phase.on_failure {
                OnFailure::Retry(n) => n + 1,
                _ => 1,
            };
            for attempt in 1..=attempts {
                if attempt > 1 {
                    r.container(&format!(
                        "Retrying phase {} (attempt {attempt} of {attempts})",
                        name.upper()
                    ));
                }
                result = r.commands(&phase.commands);
                let fin = r.commands(&phase.finally);
                if result.is_ok() {
                    result = fin;
                }
                if result.is_ok() || matches!(result, Err(Failure::TimedOut | Failure::Stopped)) {
                    break;
                }
            }
        }
        let status = match &result {
            Ok(()) => "SUCCEEDED",
            Err(Failure::TimedOut) => "TIMED_OUT",
            Err(Failure::Stopped) => "STOPPED",
            Err(_) => "FAILED",
        };
        r.container(&format!("Phase complete: {} State: {status}", name.upper()));
        match &result {
            Ok(()) => r.container("Phase context status code:  Message: "),
            Err(Failure::Command(cmd, code)) => r.container(&format!(
                "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: {cmd}. Reason: exit status {code}"
            )),
            Err(Failure::TimedOut) => r.container(&format!(
                "Phase context status code: BUILD_TIMED_OUT Message: Build has timed out after {} seconds",
                opts.timeout.as_secs()
            )),
            Err(Failure::Stopped) => r.container("Phase context status code: BUILD_STOPPED Message: The build was stopped"),
        }
        reports.push(phase_report(name.upper(), status, started));
        if result.is_err() {
            succeeding = false;
            if matches!(result, Err(Failure::TimedOut)) {
                timed_out = true;
            }
            if matches!(result, Err(Failure::Stopped)) {
                stopped = true;
            }
            let cont = phase
                .as_ref()
                .is_some_and(|p| p.on_failure == OnFailure::Continue);
            if !cont && matches!(name, PhaseName::Install | PhaseName::PreBuild) {
                skip_to_finalizing = true;
            }
        }
    }
    // Test reports (most useful when the build failed): after POST_BUILD.
    let mut test_reports = Vec::new();
    if !skip_to_finalizing && !timed_out && !stopped {
        for group in opts.spec.reports.iter().filter(|g| g.format == "JUNITXML") {
            let files = crate::artifacts::collect(&opts.source, &group.files).unwrap_or_default();
            let report = crate::reports::collect(&group.name, &files);
            r.container(&format!(
                "Report group {}: {} files, {} tests, {} passed, {} failed, {} skipped",
                report.group,
                report.files,
                report.total,
                report.passed,
                report.failed,
                report.skipped
            ));
            for e in report.errors.clone() {
                r.container(&format!("Report group {}: {e}", report.group));
            }
            test_reports.push(report);
        }
    }
    // The cache is saved after a build that went well so far.
    if let (Some(c), Some(dir)) = (&cache, &opts.cache_dir) {
        if c.action.as_deref() != Some("restore") && succeeding && !timed_out && !stopped {
            r.save_cache(c, dir);
        }
    }
    // Exported variables: their values at the end of the build.
    if !timed_out && !stopped && !opts.spec.env.exported_variables.is_empty() {
        let mut script = String::new();
        let nonce = r.session().map(|s| s.nonce.clone()).unwrap_or_default();
        for name in &opts.spec.env.exported_variables {
            script.push_str(&format!(
                "printf '%s_EXPORT:%s:%s\\n' '{nonce}' '{name}' \"$(printf %s \"${{{name}}}\" | base64 | tr -d '\\n')\"\n"
            ));
        }
        if opts.spec.version == Version::V02 {
            let _ = r.run(&script);
        }
    }
    let mut artifacts = 0;
    if !skip_to_finalizing && !timed_out && !stopped {
        let started = Instant::now();
        r.container("Entering phase UPLOAD_ARTIFACTS");
        let mut ok = true;
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
                        artifacts += n;
                        r.container(&format!("Artifact {id}: {n} files to {}", dest.display()));
                    }
                    Err(e) => {
                        ok = false;
                        r.container(&format!(
                            "Phase context status code: CLIENT_ERROR Message: {e} (artifact {id})"
                        ));
                    }
                }
            }
        } else if opts.spec.artifacts.is_some() {
            r.container("No artifacts directory given: artifacts are not kept");
        }
        let status = if ok { "SUCCEEDED" } else { "FAILED" };
        r.container(&format!("Phase complete: UPLOAD_ARTIFACTS State: {status}"));
        reports.push(phase_report("UPLOAD_ARTIFACTS", status, started));
        succeeding &= ok;
    }
    // An exported variable that carries a secret is masked like the log:
    // exported values are shown on the build's page and in its API.
    let exported: Vec<(String, String)> = std::mem::take(&mut r.exported)
        .into_iter()
        .map(|(k, v)| {
            let masked = r.masker.mask(&v);
            (k, masked)
        })
        .collect();
    r.session = None;
    r.container("Entering phase FINALIZING");
    r.container("Phase complete: FINALIZING State: SUCCEEDED");
    let status = if stopped {
        "STOPPED"
    } else if timed_out {
        "TIMED_OUT"
    } else if succeeding {
        "SUCCEEDED"
    } else {
        "FAILED"
    };
    r.container(&format!("Build {status}"));
    reports.push(phase_report("FINALIZING", "SUCCEEDED", Instant::now()));
    Outcome {
        build_id,
        succeeded: succeeding && !timed_out && !stopped,
        status: status.into(),
        phases: reports,
        exported_variables: exported,
        artifacts,
        reports: test_reports,
    }
}
