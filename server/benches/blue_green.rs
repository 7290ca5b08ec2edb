//! Benchmark (not a test) of blue/green switches under load: a small app
//! (python's http.server) on one managed target per side, 8 clients
//! hammering its app URL while blue/green deployments switch it from one
//! side to the other. Reports the requests that failed and the latency
//! (p50, p99, max) during the deployments, against the same load with no
//! deployment running, and how long each deployment took. One JSON
//! document.
//!
//! `cargo bench -p nubo-server --bench blue_green -- [--runs N]`

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const APPSPEC: &str = "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: /srv/site\nfile_exists_behavior: OVERWRITE\nhooks:\n  ApplicationStop:\n    - location: stop.sh\n  ApplicationStart:\n    - location: start.sh\n";
const START: &str = "#!/bin/sh\ncd /srv/site\nnohup python3 -m http.server 8080 --bind 127.0.0.1 > /dev/null 2>&1 &\necho $! > /srv/app.pid\n";
const STOP: &str = "#!/bin/sh\n[ -f /srv/app.pid ] && kill $(cat /srv/app.pid) 2>/dev/null\nrm -f /srv/app.pid\nexit 0\n";
const CLIENTS: usize = 8;

/// Hammers `url` until `stop`: each request's latency (ms) and whether it
/// answered 200.
async fn load(url: String, stop: Arc<AtomicBool>) -> Vec<(f64, bool)> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (url, stop, out) = (url.clone(), stop.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let ok = match http.get(&url).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                out.lock().unwrap().push((ms, ok));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = out.lock().unwrap().clone();
    v
}

fn latency(samples: &[(f64, bool)]) -> Value {
    let mut xs: Vec<f64> = samples.iter().map(|s| s.0).collect();
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = xs.len();
    let at = |q: f64| xs[((n as f64 * q) as usize).min(n - 1)];
    json!({
        "requests": n,
        "failed": samples.iter().filter(|s| !s.1).count(),
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": xs[n - 1],
    })
}

#[tokio::main]
async fn main() {
    let runs = runs_arg(4);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = bench_user(&data, true);
    let (mut server, base) = serve(&data, &tmp.path().join("cache"), &[]).await;
    let http = reqwest::Client::new();
    let call = |m: Method, path: &str, body: Option<Value>| {
        let (http, base, token, path) =
            (http.clone(), base.clone(), token.clone(), path.to_string());
        async move { api(&http, &base, &token, m, &path, body).await }
    };
    call(Method::POST, "/repos", Some(json!({"name": "app"}))).await;
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("site")).unwrap();
    std::fs::write(src.join("appspec.yml"), APPSPEC).unwrap();
    std::fs::write(src.join("start.sh"), START).unwrap();
    std::fs::write(src.join("stop.sh"), STOP).unwrap();
    std::fs::write(src.join("site/index.html"), "<h1>bench</h1>\n").unwrap();
    std::fs::write(src.join("site/health"), "ok\n").unwrap();
    for f in ["start.sh", "stop.sh"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(src.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    git(&src, &token, &["init", "-q"]);
    git(&src, &token, &["add", "."]);
    git(&src, &token, &["commit", "-qm", "bench"]);
    git(
        &src,
        &token,
        &["push", "-q", &format!("{base}/v1/repos/app"), "main"],
    );
    call(
        Method::POST,
        "/deploy/applications",
        Some(json!({"name": "bench"})),
    )
    .await;
    let g = call(
        Method::POST,
        "/deploy/applications/bench/groups",
        Some(json!({
            "name": "web", "managed": {"count": 1, "port": 8080},
            "blue_green": {"health_path": "/health", "drain_seconds": 1, "keep_blue_seconds": 600}
        })),
    )
    .await;
    assert!(g["blue_green"].is_object(), "{g:#}");
    let url = call(Method::GET, "/deploy/applications/bench/groups/web", None).await["app_url"]
        .as_str()
        .unwrap()
        .to_string();
    let deploy = || async {
        let t0 = Instant::now();
        let d = call(
            Method::POST,
            "/deploy/applications/bench/groups/web/deployments",
            Some(json!({"revision": {"repo": "app", "commit": "main"}})),
        )
        .await;
        let id = d["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{d:#}"))
            .to_string();
        loop {
            let d = call(Method::GET, &format!("/deploy/deployments/{id}"), None).await;
            if d["status"] == "Succeeded" {
                break t0.elapsed().as_secs_f64() * 1e3;
            }
            assert!(d["status"] != "Failed", "{d:#}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    // The first deployment has nothing to switch from; the second starts
    // the other side. Both warm up before anything is measured.
    deploy().await;
    deploy().await;
    let stop = Arc::new(AtomicBool::new(false));
    let quiet = tokio::spawn(load(url.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let baseline = quiet.await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = tokio::spawn(load(url.clone(), stop.clone()));
    let mut took = Vec::new();
    for _ in 0..runs {
        took.push(deploy().await);
    }
    // Requests still in flight at the last switch count too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let during = busy.await.unwrap();
    took.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let _ = server.kill();
    let _ = server.wait();
    // The managed targets outlive a server.
    kill_managed(&data);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "clients": CLIENTS,
            "switches": runs,
            "during_switches": latency(&during),
            "no_deployment": latency(&baseline),
            "deployment_ms": {"min": took[0], "median": took[took.len() / 2], "max": took[took.len() - 1]},
        }))
        .unwrap()
    );
}
