//! Benchmark (not a test): start-up time of `nubo serve` to its first 200,
//! and throughput and latency of `/healthz` and `/api/v1/me` (bearer token)
//! from a loopback client. Prints one JSON document on stdout.
//!
//! `cargo bench -p nubo-server --bench http -- [--seconds N] [--concurrency N] [--starts N]`

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_nubo");

struct Options {
    seconds: u64,
    concurrency: usize,
    starts: usize,
}

fn options() -> Options {
    let mut o = Options {
        seconds: 5,
        concurrency: 16,
        starts: 5,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (args[i].as_str(), value) {
            ("--seconds", Some(v)) => o.seconds = v,
            ("--concurrency", Some(v)) => o.concurrency = v as usize,
            ("--starts", Some(v)) => o.starts = v as usize,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(data_dir: &Path, port: u16) -> Child {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
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
            "--cache-dir",
            &data_dir.join("cache").to_string_lossy(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nubo")
}

/// Seconds from spawning the server to its first `200` on `/healthz`.
async fn time_to_first_200(http: &reqwest::Client, data_dir: &Path) -> f64 {
    let port = free_port();
    let start = Instant::now();
    let mut child = spawn(data_dir, port);
    let url = format!("http://127.0.0.1:{port}/healthz");
    loop {
        if let Ok(r) = http.get(&url).send().await {
            if r.status() == 200 {
                break;
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("server did not answer within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn summary(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "runs": v.len(),
        "min_ms": v.first().copied().unwrap_or(0.0) * 1e3,
        "median_ms": percentile(&v, 0.5) * 1e3,
        "max_ms": v.last().copied().unwrap_or(0.0) * 1e3,
    })
}

async fn load(url: String, token: Option<String>, opts: &Options) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(opts.seconds);
    let url = Arc::new(url);
    let mut workers = Vec::new();
    for _ in 0..opts.concurrency {
        let url = url.clone();
        let token = token.clone();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut req = http.get(url.as_str());
                if let Some(tok) = &token {
                    req = req.bearer_auth(tok);
                }
                match req.send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_secs_f64());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.unwrap();
        all.extend(l);
        errors += e;
    }
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "requests": all.len(),
        "errors": errors,
        "seconds": opts.seconds,
        "concurrency": opts.concurrency,
        "requests_per_second": all.len() as f64 / opts.seconds as f64,
        "latency_ms": {
            "p50": percentile(&all, 0.50) * 1e3,
            "p90": percentile(&all, 0.90) * 1e3,
            "p99": percentile(&all, 0.99) * 1e3,
            "max": all.last().copied().unwrap_or(0.0) * 1e3,
        }
    })
}

#[tokio::main]
async fn main() {
    let opts = options();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // Cold: a fresh data dir each time (migrations and first-start admin).
    let mut cold = Vec::new();
    for i in 0..opts.starts {
        cold.push(time_to_first_200(&http, &tmp.path().join(format!("cold{i}"))).await);
    }
    // Warm: the same, already initialised data dir.
    let warm_dir = tmp.path().join("warm");
    time_to_first_200(&http, &warm_dir).await;
    let mut warm = Vec::new();
    for _ in 0..opts.starts {
        warm.push(time_to_first_200(&http, &warm_dir).await);
    }

    let run = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut c = Command::new(BIN)
            .arg("--data-dir")
            .arg(&warm_dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    };
    run(
        &["user", "create", "bench", "--password-stdin"],
        "bench-password\n",
    );
    let token = run(&["token", "create", "bench"], "").trim().to_string();

    let port = free_port();
    let mut server = spawn(&warm_dir, port);
    let base = format!("http://127.0.0.1:{port}");
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let healthz = load(format!("{base}/healthz"), None, &opts).await;
    let me = load(format!("{base}/api/v1/me"), Some(token), &opts).await;
    let _ = server.kill();
    let _ = server.wait();

    let report = json!({
        "benchmark": "nubo-http",
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "startup_to_first_200": { "first_start": summary(cold), "warm_start": summary(warm) },
        "healthz": healthz,
        "api_v1_me_bearer": me,
        "note": "client and server share this machine's cores",
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
