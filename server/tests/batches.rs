//! Batch builds, end to end: buildspecs written after AWS's documented
//! examples (build-list, build-matrix, build-graph) started on the server
//! and run as their builds, with fast-fail, combined artifacts and stop;
//! `nubo build --local` runs a batch too; the checker finds cycles.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// A repository `repo` holding `files`, a project `{repo}-ci` for it and
/// one start; answers the start's JSON.
async fn start(server: &Server, token: &str, repo: &str, files: &[(&str, &str)]) -> Value {
    create_repo(server, token, repo).await;
    push_files(server, token, repo, files, &[]);
    let name = format!("{repo}-ci");
    let (s, p) = api(
        server,
        token,
        reqwest::Method::POST,
        "/projects",
        Some(json!({"name": name, "repo": repo})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (s, b) = api(
        server,
        token,
        reqwest::Method::POST,
        &format!("/projects/{name}/builds"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b
}

async fn wait_batch(server: &Server, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let (_, b) = api(
            server,
            token,
            reqwest::Method::GET,
            &format!("/build-batches/{id}"),
            None,
        )
        .await;
        if b["status"] != "IN_PROGRESS" {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("batch {id} did not end");
}

fn build_of<'a>(batch: &'a Value, identifier: &str) -> &'a Value {
    batch["builds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["identifier"] == identifier)
        .unwrap_or_else(|| panic!("no {identifier} in {batch}"))
}

#[tokio::test]
async fn a_build_list_runs_its_builds_with_their_settings_and_combined_artifacts() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    // After AWS's build-list example: two builds, one with its own buildspec.
    let spec = "version: 0.2\nbatch:\n  fast-fail: false\n  combine-artifacts: true\n  build-list:\n    - identifier: build1\n      env:\n        variables:\n          BUILD_ID: build1\n      ignore-failure: false\n    - identifier: build2\n      buildspec: build2.yml\n      env:\n        variables:\n          BUILD_ID: build2\n        compute-type: BUILD_GENERAL1_SMALL\n      ignore-failure: true\nphases:\n  build:\n    commands:\n      - echo \"default spec $BUILD_ID $CODEBUILD_BATCH_BUILD_IDENTIFIER $CODEBUILD_BUILD_BATCH_TRIGGERED\"\n      - mkdir -p out && echo one > out/one.txt\nartifacts:\n  files: ['**/*']\n  base-directory: out\n";
    let second = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"second spec $BUILD_ID\"\n      - mkdir -p out && echo two > out/two.txt\nartifacts:\n  files: ['**/*']\n  base-directory: out\n";
    let started = start(
        &server,
        &token,
        "list",
        &[("buildspec.yml", spec), ("build2.yml", second)],
    )
    .await;
    let id = started["batch_id"]
        .as_str()
        .expect("a batch_id")
        .to_string();
    assert_eq!(started["id"], id.as_str());
    assert_eq!(started["builds"].as_array().unwrap().len(), 2, "{started}");
    let batch = wait_batch(&server, &token, &id).await;
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    for (identifier, expected) in [
        ("build1", "default spec build1 build1 true"),
        ("build2", "second spec build2"),
    ] {
        let b = build_of(&batch, identifier);
        assert_eq!(b["status"], "SUCCEEDED", "{b}");
        let log = build_log(&server, &token, b["build_id"].as_str().unwrap()).await;
        assert!(
            log.contains(&format!("\n{expected}\n")),
            "{identifier}:\n{log}"
        );
        let (_, one) = api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/builds/{}", b["build_id"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(one["batch_id"], id.as_str());
        assert_eq!(one["identifier"], identifier);
    }
    // combine-artifacts: each build's in a folder of its identifier.
    let zip = client()
        .get(server.url(&format!("/api/v1/build-batches/{id}/artifacts.zip")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), 200);
    let bytes = zip.bytes().await.unwrap();
    for name in ["build1/one.txt", "build2/two.txt"] {
        assert!(
            bytes.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name} in the zip"
        );
    }
    // Someone else sees no batch.
    let bob = server.user_with_token("bob", false);
    let (s, _) = api(
        &server,
        &bob,
        reqwest::Method::GET,
        &format!("/build-batches/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = api(
        &server,
        &bob,
        reqwest::Method::POST,
        &format!("/build-batches/{id}/stop"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 404);
    // A hostile commit is refused before git sees it; no batch is made.
    let (s, e) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/list-ci/builds",
        Some(json!({"commit": "--git-dir=/etc"})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    let (_, list) = api(
        &server,
        &token,
        reqwest::Method::GET,
        "/projects/list-ci/build-batches",
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn a_matrix_of_two_by_two_gives_each_build_its_variables() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let spec = "version: 0.2\nbatch:\n  build-matrix:\n    static:\n      ignore-failure: false\n      env:\n        type: LINUX_CONTAINER\n    dynamic:\n      env:\n        variables:\n          OS: [linux, bsd]\n          ARCH: [x86, arm]\nphases:\n  build:\n    commands:\n      - echo \"combo=$OS-$ARCH id=$CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n";
    let started = start(&server, &token, "matrix", &[("buildspec.yml", spec)]).await;
    let id = started["batch_id"].as_str().unwrap().to_string();
    let batch = wait_batch(&server, &token, &id).await;
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    assert_eq!(batch["kind"], "build-matrix");
    let mut combos = Vec::new();
    for b in batch["builds"].as_array().unwrap() {
        let log = build_log(&server, &token, b["build_id"].as_str().unwrap()).await;
        let line = log
            .lines()
            .find(|l| l.starts_with("combo="))
            .unwrap_or_else(|| panic!("{log}"))
            .to_string();
        assert!(
            line.ends_with(&format!("id={}", b["identifier"].as_str().unwrap())),
            "{line}"
        );
        combos.push(line.split_whitespace().next().unwrap().to_string());
    }
    combos.sort();
    assert_eq!(
        combos,
        [
            "combo=bsd-arm",
            "combo=bsd-x86",
            "combo=linux-arm",
            "combo=linux-x86"
        ]
    );
}

#[tokio::test]
async fn a_diamond_graph_runs_in_dependency_order() {
    let server = Server::start(&[("NUBO_BUILD_CONCURRENCY", "2")]);
    let token = server.user_with_token("alice", false);
    // a, then b and c (both need a), then d (needs b and c).
    let spec = "version: 0.2\nbatch:\n  fast-fail: false\n  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n    - identifier: c\n      depend-on: [a]\n    - identifier: d\n      depend-on: [b, c]\nphases:\n  build:\n    commands:\n      - sleep 1\n";
    let started = start(&server, &token, "graph", &[("buildspec.yml", spec)]).await;
    let id = started["batch_id"].as_str().unwrap().to_string();
    let a = build_of(&started, "a")["status"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(a == "QUEUED" || a == "IN_PROGRESS", "{a}");
    assert_eq!(build_of(&started, "d")["status"], "PENDING");
    assert_eq!(build_of(&started, "d")["depends_on"], json!(["b", "c"]));
    let batch = wait_batch(&server, &token, &id).await;
    assert_eq!(batch["status"], "SUCCEEDED", "{batch}");
    let mut times = std::collections::HashMap::new();
    for b in batch["builds"].as_array().unwrap() {
        let (_, one) = api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/builds/{}", b["build_id"].as_str().unwrap()),
            None,
        )
        .await;
        let ts = |k: &str| {
            time::OffsetDateTime::parse(
                one[k].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        times.insert(
            b["identifier"].as_str().unwrap().to_string(),
            (ts("started_at"), ts("ended_at")),
        );
    }
    let (a, b, c, d) = (times["a"], times["b"], times["c"], times["d"]);
    assert!(
        b.0 >= a.1 && c.0 >= a.1,
        "b and c started after a ended: {times:?}"
    );
    assert!(
        d.0 >= b.1 && d.0 >= c.1,
        "d started after b and c ended: {times:?}"
    );
}

#[tokio::test]
async fn fast_fail_stops_the_siblings_and_a_batch_can_be_stopped() {
    let server = Server::start(&[("NUBO_BUILD_CONCURRENCY", "2")]);
    let token = server.user_with_token("alice", false);
    let spec = "version: 0.2\nbatch:\n  fast-fail: true\n  build-list:\n    - identifier: breaks\n      env:\n        variables:\n          ROLE: breaks\n    - identifier: slow\n      env:\n        variables:\n          ROLE: slow\nphases:\n  build:\n    commands:\n      - 'if [ \"$ROLE\" = breaks ]; then sleep 1; exit 3; fi; sleep 60'\n";
    let started = start(&server, &token, "fail", &[("buildspec.yml", spec)]).await;
    let id = started["batch_id"].as_str().unwrap().to_string();
    let batch = wait_batch(&server, &token, &id).await;
    assert_eq!(batch["status"], "FAILED", "{batch}");
    assert_eq!(build_of(&batch, "breaks")["status"], "FAILED");
    assert_eq!(build_of(&batch, "slow")["status"], "STOPPED", "{batch}");

    // Stopping a running batch stops all of its builds.
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: one\n    - identifier: two\n    - identifier: three\nphases:\n  build:\n    commands:\n      - sleep 60\n";
    push_files(&server, &token, "fail", &[("buildspec.yml", spec)], &[]);
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/fail-ci/builds",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, list) = api(
        &server,
        &token,
        reqwest::Method::GET,
        "/projects/fail-ci/build-batches",
        None,
    )
    .await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        let (_, b) = api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/build-batches/{id}"),
            None,
        )
        .await;
        if b["builds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["status"] == "IN_PROGRESS")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (s, stopped) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/build-batches/{id}/stop"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{stopped}");
    let batch = wait_batch(&server, &token, &id).await;
    assert_eq!(batch["status"], "STOPPED", "{batch}");
    for b in batch["builds"].as_array().unwrap() {
        assert_eq!(b["status"], "STOPPED", "{batch}");
    }
}

#[tokio::test]
async fn a_privileged_build_is_refused_with_the_reason() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: docker\n      env:\n        privileged-mode: true\n    - identifier: plain\nphases:\n  build:\n    commands: [echo hi]\n";
    let started = start(&server, &token, "priv", &[("buildspec.yml", spec)]).await;
    let batch = wait_batch(&server, &token, started["batch_id"].as_str().unwrap()).await;
    assert_eq!(batch["status"], "FAILED");
    let docker = build_of(&batch, "docker");
    assert_eq!(docker["status"], "FAILED");
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/builds/{}", docker["build_id"].as_str().unwrap()),
        None,
    )
    .await;
    assert!(
        b["reason"].as_str().unwrap().contains("privileged-mode"),
        "{b}"
    );
    assert_eq!(build_of(&batch, "plain")["status"], "SUCCEEDED");
}

#[test]
fn the_local_runner_runs_a_batch_and_the_checker_finds_cycles() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("buildspec.yml"),
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: first\n    - identifier: second\n      depend-on: [first]\nphases:\n  build:\n    commands:\n      - echo \"hello from $CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["build", "--local", "--source"])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = stdout
        .find("[first] hello from first")
        .expect("first's log");
    let second = stdout
        .find("[second] hello from second")
        .expect("second's log");
    assert!(first < second, "{stdout}");
    assert!(stdout.contains("Batch SUCCEEDED"), "{stdout}");

    std::fs::write(
        dir.join("cycle.yml"),
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["buildspec", "check"])
        .arg(dir.join("cycle.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":4:7: error: a is part of a dependency cycle"),
        "{err}"
    );
}
