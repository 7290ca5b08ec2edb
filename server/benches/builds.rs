//! Benchmark (not a test) of builds on the server: provisioning (from
//! "start build" to the first command running, seen by a live log viewer)
//! and log throughput to a live viewer. Prints one JSON document.
//!
//! `cargo bench -p nubo-server --bench builds -- [--runs N] [--container]`
//! (`--container` builds in the workspace image on a Podman service the
//! benchmark starts; the image must be built).

mod common;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Starts a build and follows its live log; answers (time to the first
/// command's output, time from then to the end, log bytes seen).
async fn run(http: &reqwest::Client, base: &str, token: &str, project: &str) -> (f64, f64, usize) {
    let t0 = Instant::now();
    let b: Value = http
        .post(format!("{base}/api/v1/projects/{project}/builds"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = b["id"].as_str().unwrap();
    let mut stream = http
        .get(format!("{base}/api/v1/builds/{id}/log/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let mut first: Option<f64> = None;
    let mut bytes = 0usize;
    let mut tail = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(300), stream.chunk())
            .await
            .expect("the log keeps coming")
            .unwrap();
        let Some(chunk) = chunk else { break };
        bytes += chunk.len();
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if first.is_none() && tail.contains("data: started") {
            first = Some(t0.elapsed().as_secs_f64());
        }
        if tail.contains("event: end") {
            break;
        }
        if tail.len() > 8192 {
            tail.drain(..tail.len() - 1024);
        }
    }
    let first =
        first.unwrap_or_else(|| panic!("the first command never ran; the log ended with: {tail}"));
    (first, t0.elapsed().as_secs_f64() - first, bytes)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let container = args.iter().any(|a| a == "--container");
    let runs = runs_arg(5);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = bench_user(&data, false);
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
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
        .env("NUBO_WORKSPACE_NETWORK", "none")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    http.post(format!("{base}/api/v1/repos"))
        .bearer_auth(&token)
        .json(&json!({"name": "app"}))
        .send()
        .await
        .unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("README.md"), "bench\n").unwrap();
    git(&src, &token, &["init", "-q"]);
    git(&src, &token, &["add", "."]);
    git(&src, &token, &["commit", "-qm", "bench"]);
    git(
        &src,
        &token,
        &["push", "-q", &format!("{base}/v1/repos/app"), "main"],
    );
    let image = if container {
        Some("localhost/nubo-workspace:latest")
    } else {
        None
    };
    let lines = 200_000;
    for (name, spec) in [
        ("quick", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n".to_string()),
        ("loud", format!("version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - seq -f '%099g' 1 {lines}\n")),
    ] {
        let r = http
            .post(format!("{base}/api/v1/projects"))
            .bearer_auth(&token)
            .json(&json!({"name": name, "repo": "app", "buildspec": spec, "image": image}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    let mut provisioning = Vec::new();
    for _ in 0..runs {
        provisioning.push(run(&http, &base, &token, "quick").await.0);
    }
    provisioning.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let (_, secs, bytes) = run(&http, &base, &token, "loud").await;
    let report = json!({
        "runner": if container { "container" } else { "local" },
        "provisioning_ms": {
            "runs": runs,
            "min": provisioning[0] * 1e3,
            "median": provisioning[runs / 2] * 1e3,
            "max": provisioning[runs - 1] * 1e3,
        },
        "live_log": {
            "lines": lines,
            "sse_bytes": bytes,
            "seconds": secs,
            "lines_per_s": lines as f64 / secs,
            "mib_per_s": bytes as f64 / secs / (1 << 20) as f64,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    let _ = server.kill();
    let _ = server.wait();
    if container {
        let _ = Command::new("bash")
            .arg(&script)
            .arg("stop")
            .arg(&engine)
            .status();
    }
}
