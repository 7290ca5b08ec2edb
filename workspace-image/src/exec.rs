//! Non-interactive commands: run to completion (or a timeout), answer the
//! exit code and the output. Output beyond a cap is dropped (and said so),
//! never buffered without bound.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{ApiError, ApiResult, Shared};

/// The most output kept per stream.
pub const OUTPUT_CAP: usize = 8 << 20;
pub const DEFAULT_TIMEOUT_S: u64 = 300;
pub const MAX_TIMEOUT_S: u64 = 24 * 3600;

#[derive(Debug, Deserialize)]
pub struct ExecRequest {
    pub command: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout_s: Option<u64>,
    #[serde(default)]
    pub stdin: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ExecResponse {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
    pub truncated: bool,
}

/// Output read so far, and whether some was dropped over the cap.
type Captured = std::sync::Arc<std::sync::Mutex<(Vec<u8>, bool)>>;

async fn read_capped(mut r: impl tokio::io::AsyncRead + Unpin, into: Captured) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let mut out = into.lock().unwrap_or_else(|e| e.into_inner());
                let room = OUTPUT_CAP.saturating_sub(out.0.len());
                if n > room {
                    out.1 = true;
                }
                out.0.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn take(c: &Captured) -> (Vec<u8>, bool) {
    std::mem::take(&mut *c.lock().unwrap_or_else(|e| e.into_inner()))
}

pub async fn exec(
    State(agent): State<Shared>,
    Json(req): Json<ExecRequest>,
) -> ApiResult<Json<ExecResponse>> {
    let Some(program) = req.command.first() else {
        return Err(ApiError::bad_request("command must name a program"));
    };
    let cwd = crate::files::confine(&agent.root, req.cwd.as_deref().unwrap_or(""), true)?;
    let cwd = cwd.real.ok_or_else(|| {
        ApiError::bad_request(format!(
            "the working directory {:?} does not exist",
            req.cwd.unwrap_or_default()
        ))
    })?;
    let timeout = req.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S);
    if timeout == 0 || timeout > MAX_TIMEOUT_S {
        return Err(ApiError::bad_request(format!(
            "timeout_s must be between 1 and {MAX_TIMEOUT_S}"
        )));
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&req.command[1..])
        .current_dir(&cwd)
        .envs(&req.env)
        .stdin(if req.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "spawn_failed",
            format!("cannot run {program:?}: {e}"),
        )
    })?;
    if let (Some(input), Some(mut stdin)) = (req.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    }
    let pgid = child.id();
    let (out_buf, err_buf) = (Captured::default(), Captured::default());
    let stdout = tokio::spawn(read_capped(
        child.stdout.take().expect("piped"),
        out_buf.clone(),
    ));
    let stderr = tokio::spawn(read_capped(
        child.stderr.take().expect("piped"),
        err_buf.clone(),
    ));
    let (status, timed_out) =
        match tokio::time::timeout(Duration::from_secs(timeout), child.wait()).await {
            Ok(status) => (status.ok(), false),
            Err(_) => {
                if let Some(pgid) = pgid {
                    // The whole process group: whatever the command started.
                    unsafe { libc::kill(-(pgid as i32), libc::SIGKILL) };
                }
                (child.wait().await.ok(), true)
            }
        };
    // A background process that keeps the pipes open must not hold the
    // answer forever: what was read by then is the answer.
    let grace = tokio::time::Instant::now() + Duration::from_secs(1);
    let _ = tokio::time::timeout_at(grace, stdout).await;
    let _ = tokio::time::timeout_at(grace, stderr).await;
    let (out, out_cut) = take(&out_buf);
    let (err, err_cut) = take(&err_buf);
    let exit_code = status.map(exit_code).unwrap_or(-1);
    Ok(Json(ExecResponse {
        exit_code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        timed_out,
        truncated: out_cut || err_cut,
    }))
}

/// The shell convention: the exit code, or 128 + the signal that killed it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}
