//! Terminal sessions: a PTY with a shell, its scrollback, and any number of
//! viewers. The shell lives until its terminal is deleted or it exits;
//! viewers come and go (a browser reload, a server restart).
//!
//! ## WebSocket framing (`GET /terminals/{id}/attach`)
//! - binary, agent → client: terminal output bytes.
//! - binary, client → agent: input bytes for the shell.
//! - text, JSON control messages:
//!   - agent → client: `{"type":"hello","replayed":N}` first (the replay of
//!     up to N bytes of scrollback follows as binary), `{"type":"skipped",
//!     "bytes":N}` when this viewer fell so far behind that output was lost
//!     to it, `{"type":"exit","code":N}` when the shell ended, and
//!     `{"type":"pong"}`.
//!   - client → agent: `{"type":"resize","cols":C,"rows":R}`,
//!     `{"type":"ack","bytes":N}` (N bytes of output were processed), and
//!     `{"type":"ping"}` (keep-alive).
//! - flow control: the agent sends a viewer at most [`WINDOW`] bytes it has
//!   not acknowledged. A slow viewer therefore never makes the agent (or the
//!   server in between) buffer without bound; the shell keeps running and
//!   its output goes to the scrollback ring, from which the viewer catches up
//!   or is told how much it skipped.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use futures_util::{SinkExt, StreamExt};
use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};
use serde::{Deserialize, Serialize};

use crate::{ApiError, ApiResult, Shared};

/// Scrollback kept per terminal and replayed to a new viewer.
pub const SCROLLBACK: usize = 1 << 20;
/// Unacknowledged output bytes a viewer may have in flight.
pub const WINDOW: u64 = 512 << 10;
/// The largest output message.
const CHUNK: usize = 64 << 10;

struct Ring {
    buf: VecDeque<u8>,
    /// Absolute offset of `buf[0]` in the terminal's output.
    start: u64,
}

impl Ring {
    fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }
    fn push(&mut self, data: &[u8]) {
        self.buf.extend(data);
        let over = self.buf.len().saturating_sub(SCROLLBACK);
        if over > 0 {
            self.buf.drain(..over);
            self.start += over as u64;
        }
    }
}

pub struct Terminal {
    pub id: String,
    pub title: String,
    pub created_at_ms: i64,
    ring: Mutex<Ring>,
    exit: Mutex<Option<i32>>,
    master: Mutex<Box<dyn MasterPty + Send>>,
    input: tokio::sync::mpsc::Sender<Vec<u8>>,
    killer: Mutex<Box<dyn portable_pty::ChildKiller + Send + Sync>>,
    /// The end offset of the output, bumped on every read and on exit.
    progress: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Serialize)]
pub struct TerminalInfo {
    pub id: String,
    pub title: String,
    pub alive: bool,
    pub exit_code: Option<i32>,
    pub created_at: i64,
}

impl Terminal {
    fn info(&self) -> TerminalInfo {
        let exit = *self.exit.lock().unwrap_or_else(|e| e.into_inner());
        TerminalInfo {
            id: self.id.clone(),
            title: self.title.clone(),
            alive: exit.is_none(),
            exit_code: exit,
            created_at: self.created_at_ms,
        }
    }

    /// Output from `pos` on, at most `max` bytes; how many bytes before the
    /// ring's start this viewer lost; and the exit code once everything was
    /// read.
    fn read_from(&self, pos: u64, max: usize) -> (Vec<u8>, u64, u64) {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let skipped = ring.start.saturating_sub(pos);
        let from = pos.max(ring.start);
        let offset = (from - ring.start) as usize;
        let n = (ring.buf.len() - offset).min(max);
        let (a, b) = ring.buf.as_slices();
        let mut out = Vec::with_capacity(n);
        let take_a = a.len().saturating_sub(offset).min(n);
        if take_a > 0 {
            out.extend_from_slice(&a[offset..offset + take_a]);
        }
        if n > take_a {
            let b_off = offset.saturating_sub(a.len());
            out.extend_from_slice(&b[b_off..b_off + (n - take_a)]);
        }
        (out, skipped, from + n as u64)
    }

    fn exit_code(&self) -> Option<i32> {
        *self.exit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
pub struct Terminals {
    map: Mutex<BTreeMap<String, Arc<Terminal>>>,
    counter: std::sync::atomic::AtomicU64,
}

impl Terminals {
    /// Kills every shell (the agent is shutting down).
    pub fn kill_all(&self) {
        let map = std::mem::take(&mut *self.map.lock().unwrap_or_else(|e| e.into_inner()));
        for term in map.values() {
            let _ = term.killer.lock().unwrap_or_else(|e| e.into_inner()).kill();
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Terminal>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct CreateRequest {
    #[serde(default)]
    pub cols: Option<u16>,
    #[serde(default)]
    pub rows: Option<u16>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn size(cols: Option<u16>, rows: Option<u16>) -> PtySize {
    PtySize {
        cols: cols.unwrap_or(80).clamp(2, 1000),
        rows: rows.unwrap_or(24).clamp(2, 1000),
        pixel_width: 0,
        pixel_height: 0,
    }
}

/// The user's login shell: `$SHELL`, else bash, else sh.
fn shell() -> String {
    if let Ok(s) = std::env::var("SHELL") {
        if !s.is_empty() && std::path::Path::new(&s).exists() {
            return s;
        }
    }
    for s in ["/bin/bash", "/usr/bin/bash"] {
        if std::path::Path::new(s).exists() {
            return s.to_string();
        }
    }
    "/bin/sh".to_string()
}

pub fn spawn(agent: &Shared, req: CreateRequest) -> anyhow::Result<Arc<Terminal>> {
    let pair = native_pty_system().openpty(size(req.cols, req.rows))?;
    let argv = req
        .command
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec![shell()]);
    let mut cmd = CommandBuilder::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd.cwd(&agent.root);
    cmd.env("TERM", "xterm-256color");
    cmd.env("COLORTERM", "truecolor");
    let child = pair.slave.spawn_command(cmd)?;
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader()?;
    let mut writer = pair.master.take_writer()?;
    let killer = child.clone_killer();
    let n = agent
        .terminals
        .counter
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let id = format!("t{n}-{:x}", now_ms());
    let (input, mut input_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let (progress, _) = tokio::sync::watch::channel(0u64);
    let title = std::path::Path::new(&argv[0])
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "shell".into());
    let term = Arc::new(Terminal {
        id: id.clone(),
        title: format!("{title} {n}"),
        created_at_ms: now_ms(),
        ring: Mutex::new(Ring {
            buf: VecDeque::new(),
            start: 0,
        }),
        exit: Mutex::new(None),
        master: Mutex::new(pair.master),
        input,
        killer: Mutex::new(killer),
        progress,
    });
    // Input: one thread, so a shell that does not read blocks nobody else.
    std::thread::spawn(move || {
        while let Some(bytes) = input_rx.blocking_recv() {
            if writer.write_all(&bytes).is_err() {
                break;
            }
            let _ = writer.flush();
        }
    });
    // Output: into the ring, then wake the viewers.
    let reading = term.clone();
    let mut child = child;
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let end = {
                        let mut ring = reading.ring.lock().unwrap_or_else(|e| e.into_inner());
                        ring.push(&buf[..n]);
                        ring.end()
                    };
                    reading.progress.send_replace(end);
                }
            }
        }
        let code = child.wait().map(|s| s.exit_code() as i32).unwrap_or(-1);
        *reading.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
        let end = reading.ring.lock().unwrap_or_else(|e| e.into_inner()).end();
        reading.progress.send_replace(end + 1);
    });
    agent
        .terminals
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, term.clone());
    Ok(term)
}

pub async fn list(State(agent): State<Shared>) -> Json<Vec<TerminalInfo>> {
    let map = agent
        .terminals
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Json(map.values().map(|t| t.info()).collect())
}

pub async fn create(
    State(agent): State<Shared>,
    body: Option<Json<CreateRequest>>,
) -> ApiResult<(StatusCode, Json<TerminalInfo>)> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let term = spawn(&agent, req)
        .map_err(|e| ApiError::internal(format!("cannot start a terminal: {e}")))?;
    Ok((StatusCode::CREATED, Json(term.info())))
}

pub async fn delete(State(agent): State<Shared>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let term = agent
        .terminals
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id)
        .ok_or_else(|| ApiError::not_found(format!("no terminal {id}")))?;
    let _ = term.killer.lock().unwrap_or_else(|e| e.into_inner()).kill();
    Ok(StatusCode::NO_CONTENT)
}

pub async fn attach(
    State(agent): State<Shared>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let term = agent
        .terminals
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no terminal {id}")))?;
    Ok(ws
        .max_message_size(1 << 20)
        .on_upgrade(move |socket| view(term, socket)))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u16, rows: u16 },
    Ack { bytes: u64 },
    Ping,
}

async fn view(term: Arc<Terminal>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let mut progress = term.progress.subscribe();
    let (replay_start, replay_end) = {
        let ring = term.ring.lock().unwrap_or_else(|e| e.into_inner());
        (ring.start, ring.end())
    };
    let hello = serde_json::json!({"type": "hello", "replayed": replay_end - replay_start});
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut pos = replay_start;
    let mut unacked: u64 = 0;
    let mut exit_sent = false;
    loop {
        // Send what the window allows.
        while unacked < WINDOW {
            let room = ((WINDOW - unacked) as usize).min(CHUNK);
            let (chunk, skipped, next) = term.read_from(pos, room);
            if skipped > 0 {
                let m = serde_json::json!({"type": "skipped", "bytes": skipped});
                if sink
                    .send(Message::Text(m.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            pos = next;
            if chunk.is_empty() {
                break;
            }
            unacked += chunk.len() as u64;
            if sink.send(Message::Binary(chunk.into())).await.is_err() {
                return;
            }
        }
        if !exit_sent && unacked < WINDOW {
            if let Some(code) = term.exit_code() {
                let (rest, _, _) = term.read_from(pos, 1);
                if rest.is_empty() {
                    let m = serde_json::json!({"type": "exit", "code": code});
                    let _ = sink.send(Message::Text(m.to_string().into())).await;
                    exit_sent = true;
                }
            }
        }
        let message = if unacked >= WINDOW || exit_sent {
            stream.next().await
        } else {
            tokio::select! {
                changed = progress.changed() => {
                    if changed.is_err() {
                        // The terminal is gone; finish what is left.
                        continue;
                    }
                    continue;
                }
                m = stream.next() => m,
            }
        };
        let Some(Ok(message)) = message else {
            return;
        };
        match message {
            Message::Binary(bytes) => {
                if term.exit_code().is_some() {
                    continue;
                }
                if term.input.send(bytes.to_vec()).await.is_err() {
                    return;
                }
            }
            Message::Text(text) => match serde_json::from_str::<Control>(&text) {
                Ok(Control::Resize { cols, rows }) => {
                    let _ = term
                        .master
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .resize(size(Some(cols), Some(rows)));
                }
                Ok(Control::Ack { bytes }) => unacked = unacked.saturating_sub(bytes),
                Ok(Control::Ping) => {
                    let pong = serde_json::json!({"type": "pong"}).to_string();
                    if sink.send(Message::Text(pong.into())).await.is_err() {
                        return;
                    }
                }
                Err(_) => {}
            },
            Message::Close(_) => return,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_tail_and_counts_what_fell_off() {
        let mut ring = Ring {
            buf: VecDeque::new(),
            start: 0,
        };
        ring.push(&vec![b'a'; SCROLLBACK]);
        ring.push(b"tail");
        assert_eq!(ring.start, 4);
        assert_eq!(ring.end(), SCROLLBACK as u64 + 4);
    }
}
