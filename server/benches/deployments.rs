//! Benchmark (not a test) of deployments: a small app (one script per
//! hook event) deployed to 2 real agents on loopback, OneAtATime and
//! AllAtOnce, end to end from the API call to Succeeded; and the per-event
//! overhead of the agent protocol — the deployment's time minus the time
//! the agents spent running events, per event on the critical path.
//! Prints one JSON document.
//!
//! `cargo bench -p nubo-server --bench deployments -- [--runs N]`

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const APPSPEC: &str = "version: 0.0\nos: linux\nhooks:\n  ApplicationStop:\n    - location: hook.sh\n  BeforeInstall:\n    - location: hook.sh\n  AfterInstall:\n    - location: hook.sh\n  ApplicationStart:\n    - location: hook.sh\n  ValidateService:\n    - location: hook.sh\n";

fn stats(mut xs: Vec<f64>) -> Value {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = xs.len();
    json!({"runs": n, "min_ms": xs[0], "median_ms": xs[n / 2], "max_ms": xs[n - 1]})
}

#[tokio::main]
async fn main() {
    let runs = runs_arg(5);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = bench_user(&data, true);
    let (mut server, base) = serve(&data, &tmp.path().join("cache"), &[]).await;
    let http = reqwest::Client::new();
    use reqwest::Method;
    api(
        &http,
        &base,
        &token,
        Method::POST,
        "/repos",
        Some(json!({"name": "app"})),
    )
    .await;
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("appspec.yml"), APPSPEC).unwrap();
    std::fs::write(
        src.join("hook.sh"),
        "#!/bin/sh\necho \"$LIFECYCLE_EVENT\"\n",
    )
    .unwrap();
    git(&src, &token, &["init", "-q"]);
    git(&src, &token, &["add", "."]);
    git(&src, &token, &["commit", "-qm", "bench"]);
    git(
        &src,
        &token,
        &["push", "-q", &format!("{base}/v1/repos/app"), "main"],
    );
    let agent_token = api(
        &http,
        &base,
        &token,
        Method::POST,
        "/deploy/agent-tokens",
        Some(json!({"description": "bench"})),
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut agents = Vec::new();
    for name in ["t1", "t2"] {
        agents.push(
            Command::new(BIN)
                .args([
                    "agent",
                    "deploy",
                    "--server",
                    &base,
                    "--token",
                    &agent_token,
                    "--name",
                    name,
                    "--tags",
                    "env=bench",
                ])
                .arg("--root")
                .arg(tmp.path().join(name))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    loop {
        let t = api(&http, &base, &token, Method::GET, "/deploy/targets", None).await;
        if t.as_array()
            .unwrap()
            .iter()
            .filter(|x| x["online"] == true)
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api(
        &http,
        &base,
        &token,
        Method::POST,
        "/deploy/applications",
        Some(json!({"name": "bench"})),
    )
    .await;
    let mut out = serde_json::Map::new();
    for (group, config, sequential) in [
        ("one", "CodeDeployDefault.OneAtATime", 14.0),
        ("all", "CodeDeployDefault.AllAtOnce", 7.0),
    ] {
        api(
            &http,
            &base,
            &token,
            Method::POST,
            "/deploy/applications/bench/groups",
            Some(json!({"name": group, "config": config, "tags": {"env": "bench"}})),
        )
        .await;
        let (mut total, mut overhead) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t0 = Instant::now();
            let d = api(
                &http,
                &base,
                &token,
                Method::POST,
                &format!("/deploy/applications/bench/groups/{group}/deployments"),
                Some(json!({"revision": {"repo": "app", "commit": "main"}})),
            )
            .await;
            let id = d["id"].as_str().unwrap().to_string();
            let d = loop {
                let d = api(
                    &http,
                    &base,
                    &token,
                    Method::GET,
                    &format!("/deploy/deployments/{id}"),
                    None,
                )
                .await;
                if d["status"] == "Succeeded" {
                    break d;
                }
                assert!(d["status"] != "Failed", "{d:#}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            // Time the agents spent in events, on the critical path: all of
            // it one at a time; the slower target's when all at once.
            let per_target: Vec<f64> = d["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    t["events"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["duration_ms"].as_f64().unwrap_or(0.0))
                        .sum()
                })
                .collect();
            let busy = if sequential > 7.0 {
                per_target.iter().sum::<f64>()
            } else {
                per_target.iter().cloned().fold(0.0, f64::max)
            };
            total.push(ms);
            overhead.push((ms - busy) / sequential);
        }
        out.insert(group.into(), json!({"config": config, "targets": 2, "events_on_critical_path": sequential, "end_to_end": stats(total), "protocol_overhead_per_event": stats(overhead)}));
    }
    for mut a in agents {
        let _ = a.kill();
        let _ = a.wait();
    }
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(out)).unwrap()
    );
}
