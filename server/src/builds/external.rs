//! Builds that run apart from the server: in an ephemeral container of the
//! project's image, or (image-less, the embedded default) in the local
//! sandbox. Either way `nubo build` runs inside with the source at
//! `/codebuild/src`, the project's cache at `/codebuild/cache`, and
//! `/codebuild/out` for what comes back: the log (followed while it
//! runs), the outcome and the artifacts.
//!
//! Everything that comes back is written by the build's code, so it is
//! read as hostile: opened without following links, regular files only,
//! capped in size and count (a link to `/`, to `master.key` or to
//! `/dev/zero` gets nothing), and the server's own host paths are never
//! shown to the build.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cgroup::Limits;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::sandbox::{Bind, Sandbox, Spec};

/// Where `nubo` is in the build's container or sandbox.
pub const BUILD_TOOL: &str = "/opt/nubo/bin/nubo";
/// Artifacts a build may keep: files, and bytes in all.
pub const MAX_ARTIFACT_FILES: usize = 10_000;
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 30;
/// The longest log line kept whole; a longer one is cut.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// The largest outcome file read.
const MAX_OUTCOME_BYTES: u64 = 1 << 20;

/// Where the build runs.
pub enum Place {
    Container { image: String },
    Sandbox(Sandbox),
}

/// One build to run apart from the server.
pub struct ExternalBuild {
    /// Names the container or the sandbox's control group.
    pub name: String,
    pub place: Place,
    /// `<build>/src`, `<build>/out`, the project's cache.
    pub src: PathBuf,
    pub out: PathBuf,
    pub cache: PathBuf,
    /// Arguments of `nubo build`.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cancel: Arc<AtomicBool>,
    pub limits: Limits,
    /// Killed after this long whatever the runner inside says.
    pub hard_timeout: Duration,
}

/// How an external build ended.
pub enum Ended {
    /// The runner's exit status.
    Exited(i64),
    Stopped,
}

/// Follows the log file the runner writes: only what a regular file holds
/// (a link or a FIFO in its place gives nothing), whole lines (a longer
/// line than [`MAX_LINE_BYTES`] is cut), and no more than `cap` bytes in all.
pub struct LogFollower {
    dir: PathBuf,
    offset: u64,
    pending: Vec<u8>,
    cap: u64,
    capped: bool,
}

impl LogFollower {
    pub fn new(out: &Path, cap: usize) -> LogFollower {
        LogFollower {
            dir: out.to_path_buf(),
            offset: 0,
            pending: Vec::new(),
            // The runner's own cap is on command output; the log lines it
            // adds around them get some room.
            cap: cap as u64 + (4 << 20),
            capped: false,
        }
    }

    /// Reads what was appended since the last call; hands on whole lines.
    pub fn poll(&mut self, on_line: &mut (dyn FnMut(&str) + Send)) {
        use std::io::{Read, Seek};
        if self.capped {
            return;
        }
        if let Ok(mut f) = crate::safe_fs::open_regular(&self.dir, "build.log") {
            if f.seek(std::io::SeekFrom::Start(self.offset)).is_ok() {
                let room = self.cap.saturating_sub(self.offset).min(4 << 20);
                let mut buf = Vec::new();
                if let Ok(n) = f.take(room).read_to_end(&mut buf) {
                    self.offset += n as u64;
                    self.pending.extend_from_slice(&buf);
                }
            }
        }
        // Whole lines, then drop them from the buffer in one go (draining
        // line by line is quadratic on a large chunk).
        let mut start = 0;
        while let Some(at) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + at];
            emit_capped(line, on_line);
            start += at + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE_BYTES {
            let line = std::mem::take(&mut self.pending);
            emit_capped(&line, on_line);
        }
        if self.offset >= self.cap {
            self.capped = true;
            on_line(&format!(
                "[Container] {} The log is longer than {} bytes; the rest is not kept",
                nubo_runner::local::now_stamp(),
                self.cap
            ));
        }
    }

    /// The last line, if the runner ended without a newline.
    pub fn finish(&mut self, on_line: &mut (dyn FnMut(&str) + Send)) {
        self.poll(on_line);
        if !self.pending.is_empty() && !self.capped {
            let line = std::mem::take(&mut self.pending);
            emit_capped(&line, on_line);
        }
    }
}

fn emit_capped(line: &[u8], on_line: &mut (dyn FnMut(&str) + Send)) {
    if line.len() > MAX_LINE_BYTES {
        let cut = String::from_utf8_lossy(&line[..MAX_LINE_BYTES]).into_owned();
        on_line(&format!(
            "{} [line cut at {MAX_LINE_BYTES} bytes]",
            cut.trim_end_matches('\r')
        ));
    } else {
        on_line(String::from_utf8_lossy(line).trim_end_matches('\r'));
    }
}

/// Runs the build and follows its log into `on_line` until it ends.
pub async fn run(
    settings: &Settings,
    build: ExternalBuild,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<Ended> {
    let mut follower = LogFollower::new(&build.out, settings.build_log_cap_bytes);
    let deadline = Instant::now() + build.hard_timeout;
    let cancel = build.cancel.clone();
    let mut follow = |on_line: &mut (dyn FnMut(&str) + Send)| {
        if Instant::now() > deadline {
            cancel.store(true, Ordering::Relaxed);
        }
        follower.poll(on_line);
    };
    let ended = match &build.place {
        Place::Container { image } => {
            let container = crate::builds::container::ContainerBuild {
                name: build.name.clone(),
                image: image.clone(),
                src: &build.src,
                out: &build.out,
                cache: build.cache.clone(),
                args: build.args.clone(),
                env: build.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                cancel: build.cancel.clone(),
                memory_mb: Some(build.limits.memory_mb),
                cpus: Some(build.limits.cpus),
                pids: Some(build.limits.pids),
            };
            crate::builds::container::run_build(settings, container, &mut follow, on_line).await?
        }
        Place::Sandbox(sandbox) => run_sandboxed(sandbox, &build, &mut follow, on_line).await?,
    };
    follower.finish(on_line);
    Ok(match ended {
        Some(code) => Ended::Exited(code),
        None => Ended::Stopped,
    })
}

#[allow(clippy::type_complexity)]
async fn run_sandboxed(
    sandbox: &Sandbox,
    build: &ExternalBuild,
    follow: &mut (dyn FnMut(&mut (dyn FnMut(&str) + Send)) + Send),
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<Option<i64>> {
    // The build's user owns its source, output and cache (links in them
    // are not followed).
    for dir in [&build.src, &build.out, &build.cache] {
        crate::sandbox::chown_tree(dir, sandbox.uid())
            .map_err(|e| Error::Internal(format!("cannot hand the build its files: {e}")))?;
    }
    let exe = std::env::current_exe()
        .map_err(|e| Error::Internal(format!("cannot find the nubo binary: {e}")))?;
    let mut command = vec![BUILD_TOOL.to_string(), "build".into()];
    command.extend(build.args.iter().cloned());
    let etc = build.out.with_file_name("sandbox-etc");
    let spec = Spec {
        binds: vec![
            Bind::rw(&build.src, "/codebuild/src"),
            Bind::rw(&build.out, "/codebuild/out"),
            Bind::rw(&build.cache, "/codebuild/cache"),
            Bind::ro(exe, BUILD_TOOL),
        ],
        env: build.env.clone(),
        cwd: "/codebuild/src".into(),
        command,
        hostname: "build".into(),
        die_with_parent: true,
        name: build.name.clone(),
        limits: build.limits,
        etc_dir: etc.clone(),
        network: true,
    };
    let (cmd, cgroup, network) = sandbox.command(&spec).map_err(Error::Internal)?;
    let mut child = tokio::process::Command::from(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Internal(format!("cannot start the build sandbox: {e}")))?;
    if let Some(network) = network {
        let attached = tokio::task::spawn_blocking(move || network.attach())
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = attached {
            on_line(&format!(
                "[Container] {} The build has no network: {e}",
                nubo_runner::local::now_stamp()
            ));
        }
    }
    let mut stderr = child.stderr.take();
    let mut stopped = false;
    let status = loop {
        follow(on_line);
        if build.cancel.load(Ordering::Relaxed) && !stopped {
            stopped = true;
            let _ = child.start_kill();
            if let Some(cg) = &cgroup {
                cg.kill_all();
            }
        }
        tokio::select! {
            s = child.wait() => break s,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    };
    follow(on_line);
    // What bubblewrap itself said (a sandbox that could not start).
    if let Some(mut e) = stderr.take() {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        let _ = (&mut e).take(4096).read_to_string(&mut text).await;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            on_line(&format!(
                "[Container] {} sandbox: {line}",
                nubo_runner::local::now_stamp()
            ));
        }
    }
    if let Some(cg) = cgroup {
        cg.remove();
    }
    let _ = std::fs::remove_dir_all(&etc);
    let status = status.map_err(|e| Error::Internal(format!("waiting for the build: {e}")))?;
    if stopped {
        return Ok(None);
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(Some(
        status
            .code()
            .map(i64::from)
            .or(status.signal().map(|s| 128 + s as i64))
            .unwrap_or(-1),
    ))
}

/// The runner's outcome from `out/outcome.json` (regular file, ≤ 1 MiB).
pub fn read_outcome(out: &Path) -> Option<nubo_runner::local::Outcome> {
    let bytes = crate::safe_fs::read_capped(out, "outcome.json", MAX_OUTCOME_BYTES).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Moves the artifacts the build left in `out/artifacts` to `dest`, keeping
/// regular files and directories only (links and special files are dropped
/// and said so), at most [`MAX_ARTIFACT_FILES`] files and
/// [`MAX_ARTIFACT_BYTES`] bytes (over either, none are kept). Answers how
/// many files were kept. The build has ended: nothing changes the tree
/// while it is checked.
pub fn take_artifacts(out: &Path, dest: &Path, on_line: &mut (dyn FnMut(&str) + Send)) -> usize {
    let root = out.join("artifacts");
    let Ok(meta) = std::fs::symlink_metadata(&root) else {
        return 0;
    };
    let say = |on_line: &mut (dyn FnMut(&str) + Send), m: String| {
        on_line(&format!(
            "[Container] {} {m}",
            nubo_runner::local::now_stamp()
        ))
    };
    if !meta.is_dir() {
        say(
            on_line,
            "The artifacts directory is not a directory: no artifacts are kept".into(),
        );
        return 0;
    }
    struct Walk {
        files: usize,
        bytes: u64,
        dropped: Vec<String>,
        over: bool,
    }
    fn walk(dir: &Path, base: &Path, depth: usize, w: &mut Walk) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .display()
                .to_string();
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 64 => walk(&path, base, depth + 1, w),
                Ok(t) if t.is_file() => {
                    w.files += 1;
                    w.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
                    if w.files > MAX_ARTIFACT_FILES || w.bytes > MAX_ARTIFACT_BYTES {
                        w.over = true;
                        return;
                    }
                }
                _ => {
                    let _ = std::fs::remove_file(&path).or_else(|_| std::fs::remove_dir_all(&path));
                    w.dropped.push(rel);
                }
            }
            if w.over {
                return;
            }
        }
    }
    let mut w = Walk {
        files: 0,
        bytes: 0,
        dropped: Vec::new(),
        over: false,
    };
    walk(&root, &root, 0, &mut w);
    for rel in w.dropped.iter().take(20) {
        say(
            on_line,
            format!("Artifact {rel} is a symbolic link or not a regular file: not kept"),
        );
    }
    if w.over {
        say(
            on_line,
            format!(
                "The artifacts are more than {MAX_ARTIFACT_FILES} files or {MAX_ARTIFACT_BYTES} bytes: none are kept"
            ),
        );
        return 0;
    }
    let _ = std::fs::remove_dir_all(dest);
    if std::fs::rename(&root, dest).is_err() {
        return 0;
    }
    w.files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_specials_in_artifacts_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("artifacts/sub")).unwrap();
        std::fs::write(out.join("artifacts/sub/app.txt"), "app").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", out.join("artifacts/passwd")).unwrap();
        std::os::unix::fs::symlink("/", out.join("artifacts/root")).unwrap();
        let dest = tmp.path().join("kept");
        let mut lines = Vec::new();
        let n = take_artifacts(&out, &dest, &mut |l| lines.push(l.to_string()));
        assert_eq!(n, 1);
        assert!(dest.join("sub/app.txt").is_file());
        assert!(!dest.join("passwd").exists() && !dest.join("root").exists());
        assert!(
            lines
                .iter()
                .any(|l| l.contains("Artifact passwd is a symbolic link")),
            "{lines:?}"
        );
        // The artifacts directory itself a link: nothing.
        let out2 = tmp.path().join("out2");
        std::fs::create_dir_all(&out2).unwrap();
        std::os::unix::fs::symlink("/", out2.join("artifacts")).unwrap();
        assert_eq!(
            take_artifacts(&out2, &tmp.path().join("k2"), &mut |_| {}),
            0
        );
    }

    #[test]
    fn the_log_is_read_only_from_a_regular_file_and_capped() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("build.log")).unwrap();
        let mut f = LogFollower::new(tmp.path(), 0);
        let mut lines = Vec::new();
        f.finish(&mut |l| lines.push(l.to_string()));
        assert!(lines.is_empty(), "{lines:?}");
        std::fs::remove_file(tmp.path().join("build.log")).unwrap();
        // One endless line, then far more than the cap.
        std::fs::write(tmp.path().join("build.log"), vec![b'x'; 200_000]).unwrap();
        let mut f = LogFollower::new(tmp.path(), 0);
        let mut lines = Vec::new();
        f.poll(&mut |l| lines.push(l.to_string()));
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with("[line cut at 65536 bytes]"));
        assert!(lines[0].len() < MAX_LINE_BYTES + 100);
        let big = tmp.path().join("big");
        std::fs::create_dir(&big).unwrap();
        std::fs::write(big.join("build.log"), "line\n".repeat(2_000_000)).unwrap();
        let mut f = LogFollower::new(&big, 1000);
        let mut n = 0usize;
        for _ in 0..10 {
            f.poll(&mut |_| n += 1);
        }
        assert!(n < 1_000_000, "{n} lines: the cap did not hold");
    }
}
