//! Benchmark (not a test) of pipelines: from `git push` to the first
//! build command's output at a live log viewer, next to starting the same
//! build directly (what the pipeline adds); and a burst of 100 executions
//! started at once — how long until all are accepted and until all reach
//! their approval — with API reads and a push timed meanwhile. Prints one
//! JSON document.
//!
//! `cargo bench -p nubo-server --bench pipelines -- [--runs N]`

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Waits on a build's live log for the first command's output; answers the
/// seconds since `t0`.
async fn first_output(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    t0: Instant,
) -> f64 {
    let mut stream = http
        .get(format!("{base}/api/v1/builds/{id}/log/stream"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let mut tail = String::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(120), stream.chunk())
            .await
            .expect("the log keeps coming")
            .unwrap()
            .expect("the log ended before its first command");
        tail.push_str(&String::from_utf8_lossy(&chunk));
        if tail.contains("data: started") {
            return t0.elapsed().as_secs_f64();
        }
    }
}

async fn get(http: &reqwest::Client, url: String, token: &str) -> Value {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn stats(mut xs: Vec<f64>) -> Value {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = xs.len();
    json!({"runs": n, "min_ms": xs[0] * 1e3, "median_ms": xs[n / 2] * 1e3, "max_ms": xs[n - 1] * 1e3})
}

fn stage(name: &str, category: &str, provider: &str, config: Value) -> Value {
    json!({"name": name, "actions": [{"name": name, "actionTypeId": {"category": category, "owner": "AWS", "provider": provider, "version": "1"}, "configuration": config}]})
}

#[tokio::main]
async fn main() {
    let runs = runs_arg(5);
    let burst = 100;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let token = bench_user(&data, false);
    let (mut server, base) = serve(&data, &tmp.path().join("cache"), &[]).await;
    let http = reqwest::Client::new();
    for repo in ["app", "other"] {
        http.post(format!("{base}/api/v1/repos"))
            .bearer_auth(&token)
            .json(&json!({"name": repo}))
            .send()
            .await
            .unwrap();
    }
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("README.md"), "bench\n").unwrap();
    git(&src, &token, &["init", "-q"]);
    git(&src, &token, &["add", "."]);
    git(&src, &token, &["commit", "-qm", "bench"]);
    for repo in ["app", "other"] {
        git(
            &src,
            &token,
            &["push", "-q", &format!("{base}/v1/repos/{repo}"), "main"],
        );
    }
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n";
    let r = http
        .post(format!("{base}/api/v1/projects"))
        .bearer_auth(&token)
        .json(&json!({"name": "quick", "repo": "app", "buildspec": spec}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let source = stage(
        "Source",
        "Source",
        "CodeCommit",
        json!({"RepositoryName": "app", "BranchName": "main"}),
    );
    let push_pipeline = json!({"pipeline": {"name": "on-push", "executionMode": "PARALLEL",
        "stages": [source, stage("Build", "Build", "CodeBuild", json!({"ProjectName": "quick"}))]}});
    let r = http
        .post(format!("{base}/api/v1/pipelines"))
        .bearer_auth(&token)
        .json(&push_pipeline)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // Push → the first command's output, through the pipeline.
    let mut through_pipeline = Vec::new();
    for i in 0..runs {
        std::fs::write(src.join("README.md"), format!("bench {i}\n")).unwrap();
        git(&src, &token, &["commit", "-qam", "again"]);
        let t0 = Instant::now();
        git(
            &src,
            &token,
            &["push", "-q", &format!("{base}/v1/repos/app"), "main"],
        );
        let build = loop {
            let list = get(
                &http,
                format!("{base}/api/v1/pipelines/on-push/executions"),
                &token,
            )
            .await;
            if let Some(id) = list
                .as_array()
                .and_then(|l| l.iter().find(|e| e["number"] == i as i64 + 1))
                .and_then(|e| e["stages"][1]["actions"][0]["build_id"].as_str())
            {
                break id.to_string();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        through_pipeline.push(first_output(&http, &base, &token, &build, t0).await);
        // Let it end, so the next run starts from an idle runner.
        while get(&http, format!("{base}/api/v1/builds/{build}"), &token).await["status"]
            == "IN_PROGRESS"
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The same build started directly: what the build itself costs.
    let mut direct = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let b: Value = http
            .post(format!("{base}/api/v1/projects/quick/builds"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = b["id"].as_str().unwrap().to_string();
        direct.push(first_output(&http, &base, &token, &id, t0).await);
        while get(&http, format!("{base}/api/v1/builds/{id}"), &token).await["status"]
            == "IN_PROGRESS"
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // A burst: 100 executions of source → approval, started at once.
    let gate = json!({"pipeline": {"name": "burst", "executionMode": "PARALLEL",
        "stages": [stage("Source", "Source", "CodeCommit", json!({"RepositoryName": "app", "BranchName": "main"})),
                   stage("Gate", "Approval", "Manual", json!({}))]}});
    let r = http
        .post(format!("{base}/api/v1/pipelines"))
        .bearer_auth(&token)
        .json(&gate)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let t0 = Instant::now();
    let starts = (0..burst).map(|_| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let r = http
                .post(format!("{base}/api/v1/pipelines/burst/executions"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
    });
    let mut reads = Vec::new();
    let reader = {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let mut times = Vec::new();
            for _ in 0..10 {
                let t = Instant::now();
                let r = http
                    .get(format!("{base}/api/v1/pipelines"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                times.push(t.elapsed().as_secs_f64());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            times
        })
    };
    let mut ids = Vec::new();
    for s in starts {
        ids.push(s.await.unwrap());
    }
    let accepted = t0.elapsed().as_secs_f64();
    // A push to another repository while the engine works through them.
    std::fs::write(src.join("README.md"), "during the burst\n").unwrap();
    git(&src, &token, &["commit", "-qam", "during"]);
    let tp = Instant::now();
    git(
        &src,
        &token,
        &["push", "-q", &format!("{base}/v1/repos/other"), "main"],
    );
    let push_during = tp.elapsed().as_secs_f64();
    reads.extend(reader.await.unwrap());
    let mut waiting = 0;
    while waiting < burst {
        waiting = 0;
        for id in &ids {
            let e = get(
                &http,
                format!("{base}/api/v1/pipelines/burst/executions/{id}"),
                &token,
            )
            .await;
            if e["stages"][1]["actions"][0]["status"] == "InProgress" {
                waiting += 1;
            }
        }
        if t0.elapsed() > Duration::from_secs(300) {
            break;
        }
    }
    let all_at_gate = t0.elapsed().as_secs_f64();
    let (pm, dm) = {
        let mut a = through_pipeline.clone();
        let mut b = direct.clone();
        a.sort_by(|x, y| x.partial_cmp(y).unwrap());
        b.sort_by(|x, y| x.partial_cmp(y).unwrap());
        (a[a.len() / 2], b[b.len() / 2])
    };
    let report = json!({
        "push_to_first_output": stats(through_pipeline),
        "direct_start_to_first_output": stats(direct),
        "pipeline_adds_median_ms": (pm - dm) * 1e3,
        "burst": {
            "executions": burst,
            "all_accepted_s": accepted,
            "all_at_their_approval_s": all_at_gate,
            "at_their_approval": waiting,
            "api_list_during": stats(reads),
            "push_during_ms": push_during * 1e3,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    let _ = server.kill();
    let _ = server.wait();
}
