//! Benchmark (not a test) of workspaces on the local backend: create → shell
//! prompt and start → prompt, terminal output throughput to a WebSocket
//! client, keystroke echo latency with 1 and 50 terminals, and the idle
//! agent's resident memory. Prints one JSON document on stdout.
//!
//! `cargo bench -p nubo-server --bench workspaces -- [--runs N] [--samples N] [--container]`
//!
//! With `--container` the workspaces are containers on a Podman service the
//! benchmark starts (`scripts/podman.sh`; the image must be built).

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Bench {
    async fn post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn attach(&self, id: &str, tid: &str) -> Ws {
        let url = format!(
            "{}/api/v1/workspaces/{id}/terminals/{tid}/attach",
            self.base
        )
        .replace("http://", "ws://");
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .unwrap()
            .0
    }

    /// A new terminal in `id`, attached, after its first prompt.
    async fn terminal(&self, id: &str) -> Ws {
        let t = self
            .post(&format!("/workspaces/{id}/terminals"), json!({}))
            .await;
        let mut ws = self.attach(id, t["id"].as_str().unwrap()).await;
        read_until(&mut ws, |s| s.contains("# ") || s.contains("$ ")).await;
        ws
    }
}

async fn read_until(ws: &mut Ws, done: impl Fn(&str) -> bool) -> usize {
    let mut seen = String::new();
    let mut bytes = 0;
    while !done(&seen) {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                bytes += b.len();
                let text = String::from_utf8_lossy(&b);
                seen.push_str(&text);
                if seen.len() > 4096 {
                    seen.drain(..seen.len() - 1024);
                }
                let ack = json!({"type": "ack", "bytes": b.len()}).to_string();
                ws.send(Message::Text(ack.into())).await.unwrap();
            }
            Ok(Some(Ok(_))) => {}
            _ => panic!("terminal went quiet; saw {seen:?}"),
        }
    }
    bytes
}

fn stats(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize] * 1e3;
    json!({"samples": v.len(), "p50_ms": p(0.5), "p99_ms": p(0.99), "max_ms": p(1.0)})
}

fn agent_rss_kib(id: &str) -> Option<u64> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let ours = String::from_utf8_lossy(&environ)
            .split('\0')
            .any(|v| v == format!("NUBO_WORKSPACE_ID={id}"));
        // The agent itself, not an init process that started it.
        let args: Vec<&str> = cmd.split('\0').collect();
        let is_agent = (args[0].ends_with("nubo-agent") && args.get(1) == Some(&"serve"))
            || (args[0].ends_with("nubo")
                && args.get(1) == Some(&"agent")
                && args.get(2) == Some(&"serve"));
        if is_agent && (cmd.contains(id) || ours) {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            return status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok());
        }
    }
    None
}

/// Echo latency: each terminal types one character at a time and waits for
/// its echo.
async fn echo(mut ws: Ws, samples: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..samples {
        let t = Instant::now();
        ws.send(Message::Binary(b"a".to_vec().into()))
            .await
            .unwrap();
        read_until(&mut ws, |s| s.contains('a')).await;
        out.push(t.elapsed().as_secs_f64());
        if i % 40 == 39 {
            // Ctrl-U: clear the line, so it never wraps.
            ws.send(Message::Binary(vec![0x15].into())).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            while let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(20), ws.next()).await
            {
                if let Message::Binary(b) = m {
                    let ack = json!({"type": "ack", "bytes": b.len()}).to_string();
                    ws.send(Message::Text(ack.into())).await.unwrap();
                }
            }
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let container = std::env::args().any(|a| a == "--container");
    let backend = if container { "container" } else { "local" };
    let runs = arg("--runs", 5);
    let samples = arg("--samples", 200);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    cli(
        &data,
        &["user", "create", "bench", "--password-stdin"],
        Some("bench-password-1\n"),
    );
    let token = cli(&data, &["token", "create", "bench"], None);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/podman.sh");
    let engine = tmp.path().join("podman.sock");
    if container {
        let ok = Command::new("bash")
            .arg(&script)
            .arg("service")
            .arg(&engine)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "the podman service did not start");
    }
    let mut server = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--log-level",
            "warn",
            "serve",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--ssh",
            "127.0.0.1:0",
            "--preview-http",
            "127.0.0.1:0",
        ])
        .env("NUBO_CACHE_DIR", tmp.path().join("cache"))
        .env("NUBO_CONTAINER_SOCKET", &engine)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let b = Bench {
        base: format!("http://127.0.0.1:{port}"),
        token,
        http: reqwest::Client::new(),
    };
    while b
        .http
        .get(format!("{}/healthz", b.base))
        .send()
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Create → prompt, and stop/start → prompt.
    let mut create = Vec::new();
    let mut restart = Vec::new();
    let mut ids = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        let ws = b
            .post(
                "/workspaces",
                json!({"name": format!("b{i}"), "backend": backend}),
            )
            .await;
        let id = ws["id"].as_str().unwrap().to_string();
        drop(b.terminal(&id).await);
        create.push(t.elapsed().as_secs_f64());
        b.post(&format!("/workspaces/{id}/stop"), json!({})).await;
        let t = Instant::now();
        b.post(&format!("/workspaces/{id}/start"), json!({})).await;
        drop(b.terminal(&id).await);
        restart.push(t.elapsed().as_secs_f64());
        ids.push(id);
    }
    let id = ids[0].clone();

    // Idle agent memory: a fresh workspace without terminals.
    let idle = b
        .post("/workspaces", json!({"name": "idle", "backend": backend}))
        .await;
    let idle_id = idle["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss = agent_rss_kib(&idle_id);

    // Throughput of one terminal to one viewer.
    let mut ws = b.terminal(&id).await;
    let total = 64 << 20;
    let t = Instant::now();
    ws.send(Message::Binary(
        format!("head -c {total} /dev/zero | tr '\\0' x; echo; echo done-$((1+1))\n")
            .into_bytes()
            .into(),
    ))
    .await
    .unwrap();
    let bytes = read_until(&mut ws, |s| s.contains("done-2")).await;
    let secs = t.elapsed().as_secs_f64();
    drop(ws);

    // Echo latency with 1 and 50 terminals typing at once.
    let one = echo(b.terminal(&id).await, samples).await;
    let mut terms = Vec::new();
    for _ in 0..50 {
        terms.push(b.terminal(&id).await);
    }
    let per = (samples / 4).max(20);
    let handles: Vec<_> = terms
        .into_iter()
        .map(|t| tokio::spawn(echo(t, per)))
        .collect();
    let mut fifty = Vec::new();
    for h in handles {
        fifty.extend(h.await.unwrap());
    }

    let report = json!({
        "backend": backend,
        "create_to_prompt": stats(create),
        "start_to_prompt": stats(restart),
        "terminal_throughput": {"bytes": bytes, "seconds": secs, "mib_per_s": bytes as f64 / secs / (1 << 20) as f64},
        "echo_1_terminal": stats(one),
        "echo_50_terminals": stats(fifty),
        "idle_agent_rss_kib": rss,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    for id in ids.iter().chain([&idle_id]) {
        let _ = b
            .http
            .delete(format!("{}/api/v1/workspaces/{id}", b.base))
            .bearer_auth(&b.token)
            .send()
            .await;
    }
    let _ = server.kill();
    let _ = server.wait();
    if container {
        let _ = Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(&engine)
            .status();
    }
    // The agents outlive the server by design; the benchmark's must not.
    let needle = data.join("workspaces").display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(&needle) {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}
