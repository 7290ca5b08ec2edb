//! Running one lifecycle event's scripts as AWS's agent does: one after
//! another, each in its own process group with the hook environment,
//! output into `scripts.log` with `[stdout]`/`[stderr]` prefixes, TERM to
//! the group on timeout. A script that exits while a process it left
//! behind still holds its output fails with error 6, naming the process,
//! instead of hanging until the timeout.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nubo_runner::appspec::Hook;

use super::wire::{code, LOG_TAIL};

/// How long output may stay open after a script exits.
pub const OUTPUT_GRACE: Duration = Duration::from_secs(3);

/// Why an event failed: AWS's error code, the script, a message.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: i32,
    pub script: Option<String>,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, script: Option<&str>, message: impl Into<String>) -> Failure {
        Failure {
            code,
            script: script.map(str::to_string),
            message: message.into(),
        }
    }
}

/// The deployment's `scripts.log`, and the tail of what one event wrote.
pub struct Log {
    file: Option<std::fs::File>,
    tail: Vec<u8>,
}

/// `2026-12-02 07:11:49.123` in UTC.
pub fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

impl Log {
    pub fn open(path: &Path) -> Log {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        Log {
            file: OpenOptions::new().create(true).append(true).open(path).ok(),
            tail: Vec::new(),
        }
    }

    pub fn line(&mut self, text: &str) {
        let line = format!("[{}] {}\n", timestamp(), text);
        if let Some(f) = &mut self.file {
            let _ = f.write_all(line.as_bytes());
        }
        self.tail.extend_from_slice(line.as_bytes());
        if self.tail.len() > 4 * LOG_TAIL {
            self.tail.drain(..self.tail.len() - LOG_TAIL);
        }
    }

    /// About the last 2 KiB written, from a line start.
    pub fn tail(&self) -> String {
        let start = self.tail.len().saturating_sub(LOG_TAIL);
        let mut s = &self.tail[start..];
        if start > 0 {
            if let Some(nl) = s.iter().position(|b| *b == b'\n') {
                s = &s[nl + 1..];
            }
        }
        String::from_utf8_lossy(s).into_owned()
    }
}

enum Out {
    Line(&'static str, String),
    Closed,
}

fn pipe_inode(fd: i32) -> Option<u64> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st.st_ino)
}

/// The processes (other than this one) holding any of the pipes open.
fn pipe_holders(inodes: &[u64]) -> Vec<String> {
    let me = std::process::id().to_string();
    let wanted: Vec<String> = inodes.iter().map(|i| format!("pipe:[{i}]")).collect();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let pid = p.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .map(|l| wanted.iter().any(|w| l.as_os_str() == w.as_str()))
                .unwrap_or(false)
        });
        if holds {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            out.push(format!("process {pid} ({})", cmdline.join(" ")));
        }
    }
    out
}

fn current_user() -> Option<String> {
    let pw = unsafe { libc::getpwuid(libc::geteuid()) };
    if pw.is_null() {
        return None;
    }
    let name = unsafe { std::ffi::CStr::from_ptr((*pw).pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// Runs each script of the event in turn; the first failure ends it.
pub fn run_event(
    archive: &Path,
    event: &str,
    hooks: &[Hook],
    env: &[(String, String)],
    log: &mut Log,
) -> Result<(), Failure> {
    if hooks.is_empty() {
        return Ok(());
    }
    log.line(&format!("LifecycleEvent - {event}"));
    for h in hooks {
        run_script(archive, h, env, log)?;
    }
    Ok(())
}

fn run_script(
    archive: &Path,
    hook: &Hook,
    env: &[(String, String)],
    log: &mut Log,
) -> Result<(), Failure> {
    let loc = hook.location.as_str();
    log.line(&format!("Script - {loc}"));
    let path: PathBuf = archive.join(loc);
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        _ => {
            return Err(Failure::new(
                code::SCRIPT_MISSING,
                Some(loc),
                format!("Script does not exist at specified location: {loc}"),
            ))
        }
    };
    if meta.permissions().mode() & 0o111 == 0 {
        let mode = meta.permissions().mode() | 0o755;
        if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)) {
            return Err(Failure::new(
                code::SCRIPT_NOT_EXECUTABLE,
                Some(loc),
                format!("Script at specified location: {loc} is not executable and cannot be made so: {e}"),
            ));
        }
    }
    let runas = hook
        .runas
        .as_deref()
        .filter(|u| Some(*u) != current_user().as_deref());
    let mut cmd = match runas {
        Some(user) => {
            let quoted = format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"));
            let mut c = Command::new("su");
            c.args([user, "-s", "/bin/sh", "-c", &quoted]);
            c
        }
        None => Command::new(&path),
    };
    cmd.current_dir(archive)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| {
        Failure::new(
            code::SCRIPT_FAILED,
            Some(loc),
            format!("Script at specified location: {loc} could not be started: {e} (does it start with #!?)"),
        )
    })?;
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<Out>();
    let mut inodes = Vec::new();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    inodes.extend(pipe_inode(stdout.as_raw_fd()));
    inodes.extend(pipe_inode(stderr.as_raw_fd()));
    for (name, reader) in [
        ("stdout", Box::new(stdout) as Box<dyn std::io::Read + Send>),
        ("stderr", Box::new(stderr)),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\n', '\r'])
                            .to_string();
                        if tx.send(Out::Line(name, text)).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Out::Closed);
        });
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(hook.timeout);
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut open = 2;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Out::Line(stream, text)) => log.line(&format!("[{stream}]{text}")),
            Ok(Out::Closed) => open -= 1,
            Err(mpsc::RecvTimeoutError::Disconnected) => open = 0,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if exited.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some((status, Instant::now()));
            }
        }
        if let Some((status, at)) = exited {
            if open == 0 {
                return match status.code() {
                    Some(0) => Ok(()),
                    Some(c) => Err(Failure::new(
                        code::SCRIPT_FAILED,
                        Some(loc),
                        format!("Script at specified location: {loc} failed with exit code {c}"),
                    )),
                    None => Err(Failure::new(
                        code::SCRIPT_FAILED,
                        Some(loc),
                        format!("Script at specified location: {loc} was ended by a signal"),
                    )),
                };
            }
            if at.elapsed() >= OUTPUT_GRACE {
                let holders = pipe_holders(&inodes);
                let who = if holders.is_empty() {
                    "a process it started".to_string()
                } else {
                    holders.join(", ")
                };
                let message = format!(
                    "Script at specified location: {loc} exited, but {who} still holds its standard output or error open; start background processes with their output redirected (for example `cmd > /dev/null 2>&1 &`)"
                );
                log.line(&message);
                return Err(Failure::new(code::OUTPUTS_LEFT_OPEN, Some(loc), message));
            }
        }
        if exited.is_none() && Instant::now() >= deadline {
            unsafe { libc::kill(-pgid, libc::SIGTERM) };
            let grace = Instant::now() + Duration::from_secs(5);
            while Instant::now() < grace {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            let message = format!(
                "Script at specified location: {loc} failed to complete in {} seconds",
                hook.timeout
            );
            log.line(&message);
            return Err(Failure::new(code::SCRIPT_TIMED_OUT, Some(loc), message));
        }
    }
}
