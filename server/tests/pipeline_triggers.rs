//! Push filters on a monorepo: a push starts only the pipelines whose
//! branches, tags and file paths admit it (excludes win), and the dry run
//! says which would start and why.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

fn filtered(name: &str, push: Value) -> Value {
    let mut d = declaration(name);
    d["pipeline"]["stages"][0]["actions"][0]["configuration"]["RepositoryName"] = json!("mono");
    d["pipeline"]["stages"][1]["actions"][0]["configuration"]["ProjectName"] = json!("mono-build");
    d["pipeline"]["pipelineType"] = json!("V2");
    d["pipeline"]["triggers"] = json!([{"providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": "Code", "push": [push]}}]);
    d
}

async fn executions(server: &Server, token: &str, pipeline: &str) -> usize {
    api(
        server,
        token,
        Method::GET,
        &format!("/pipelines/{pipeline}/executions"),
        None,
    )
    .await
    .1
    .as_array()
    .map(Vec::len)
    .unwrap_or(0)
}

#[tokio::test]
async fn a_push_starts_only_the_pipelines_its_ref_and_files_match() {
    let server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    create_repo(&server, &alice, "mono").await;
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "-b", "main", "src"]));
    let src = w.join("src");
    let url = server.url("/v1/repos/mono");
    let commit_push = |files: &[(&str, &str)], message: &str, refs: &[&str]| {
        for (path, text) in files {
            let p = src.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        ok(git(&src, "x", "x", &["add", "."]));
        ok(git(&src, "x", "x", &["commit", "-qm", message]));
        let mut args = vec!["push", "-q", url.as_str()];
        args.extend_from_slice(refs);
        ok(git(&src, "alice", &alice, &args));
    };
    commit_push(
        &[("api/main.rs", "1"), ("web/index.html", "1")],
        "first",
        &["main"],
    );
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/projects",
        Some(json!({"name": "mono-build", "repo": "mono", "buildspec": SPEC})),
    )
    .await;
    assert_eq!(s, 201);
    for (name, push) in [
        (
            "api",
            json!({"branches": {"includes": ["main"]}, "filePaths": {"includes": ["api/**"]}}),
        ),
        (
            "web",
            json!({"branches": {"includes": ["main", "release/*"]}, "filePaths": {"includes": ["web/**"], "excludes": ["web/**/*.md"]}}),
        ),
        (
            "release",
            json!({"tags": {"includes": ["v*"], "excludes": ["v0*"]}}),
        ),
    ] {
        let (s, body) = api(
            &server,
            &alice,
            Method::POST,
            "/pipelines",
            Some(filtered(name, push)),
        )
        .await;
        assert_eq!(s, 201, "{body}");
    }
    // A change under web/ starts web only; a Markdown file there, nothing.
    commit_push(&[("web/index.html", "2")], "web change", &["main"]);
    commit_push(&[("web/docs/notes.md", "x")], "docs", &["main"]);
    ok(git(&src, "x", "x", &["tag", "v0.9"]));
    ok(git(&src, "x", "x", &["tag", "-a", "-m", "one", "v1.0"]));
    ok(git(
        &src,
        "alice",
        &alice,
        &["push", "-q", &url, "v0.9", "v1.0"],
    ));
    let mut counts = (0, 0, 0);
    for _ in 0..50 {
        counts = (
            executions(&server, &alice, "api").await,
            executions(&server, &alice, "web").await,
            executions(&server, &alice, "release").await,
        );
        if counts.1 >= 1 && counts.2 >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts_after = (
        executions(&server, &alice, "api").await,
        executions(&server, &alice, "web").await,
        executions(&server, &alice, "release").await,
    );
    assert_eq!(
        counts_after,
        (0, 1, 1),
        "api, web, release (before settling: {counts:?})"
    );
    let (_, list) = api(
        &server,
        &alice,
        Method::GET,
        "/pipelines/release/executions",
        None,
    )
    .await;
    assert_eq!(list[0]["trigger"]["ref"], "refs/tags/v1.0");
    let tagged = ok(git(&src, "x", "x", &["rev-parse", "v1.0^{commit}"]))
        .trim()
        .to_string();
    assert_eq!(
        list[0]["source_revision"]["commit"], tagged,
        "the tag's commit, not the tag object"
    );

    // The dry run says which would start, and why.
    let ask = |r: &str, paths: &[&str]| {
        let body = json!({"repository": "mono", "ref": r, "paths": paths});
        let (server, alice) = (&server, &alice);
        async move {
            api(
                server,
                alice,
                Method::POST,
                "/pipelines/dry-run",
                Some(body),
            )
            .await
        }
    };
    let (s, answer) = ask("refs/heads/main", &["api/lib.rs"]).await;
    assert_eq!(s, 200, "{answer}");
    let by: std::collections::HashMap<String, (bool, String)> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["pipeline"].as_str().unwrap().to_string(),
                (
                    r["starts"].as_bool().unwrap(),
                    r["why"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(
        by["api"],
        (
            true,
            "filter 1: branch main, and api/lib.rs changed".to_string()
        )
    );
    assert_eq!(
        by["web"],
        (
            false,
            "filter 1: branch main, but none of the 1 changed files is included".to_string()
        )
    );
    assert!(!by["release"].0);
    let (_, answer) = ask("refs/heads/feature", &["web/a.html"]).await;
    assert_eq!(answer["summary"], "no pipeline would start", "{answer}");
    let (_, answer) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/dry-run",
        Some(json!({"repository": "elsewhere", "ref": "refs/heads/main"})),
    )
    .await;
    assert_eq!(answer["results"], json!([]));
    assert_eq!(answer["summary"], "no pipeline would start");
}

#[test]
fn filters_are_checked_with_their_places() {
    let bad = filtered(
        "x",
        json!({"branches": {"includes": ["main"]}, "tags": {"includes": ["v*"]}}),
    );
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("p.json");
    std::fs::write(&f, serde_json::to_string_pretty(&bad).unwrap()).unwrap();
    let out = cli(
        tmp.path(),
        &["pipeline", "check", f.to_str().unwrap()],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error: pipeline.triggers[0].gitConfiguration.push[0]: a push filter names branches or tags, not both"), "{stderr}");
}

fn in_repo_yaml(name: &str, words: &str) -> String {
    format!(
        "pipeline:
  name: {name}
  stages:
    - name: Source
      actions:
        - name: Code
          actionTypeId: {{category: Source, owner: AWS, provider: CodeCommit, version: '1'}}
          configuration: {{RepositoryName: web, BranchName: main}}
          namespace: SourceVariables
    - name: Build
      actions:
        - name: Compile
          actionTypeId: {{category: Build, owner: AWS, provider: CodeBuild, version: '1'}}
          configuration: {{ProjectName: web-build}}
    - name: Approve
      actions:
        - name: Gate
          actionTypeId: {{category: Approval, owner: AWS, provider: Manual, version: '1'}}
          configuration: {{CustomData: '{words}'}}
"
    )
}

#[tokio::test]
async fn a_definition_in_the_repository_runs_the_file_of_its_commit() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("taken")),
    )
    .await;
    assert_eq!(s, 201);
    let first = in_repo_yaml("ci", "version one");
    let taken = in_repo_yaml("taken", "not mine");
    push(
        &server,
        &alice,
        "web",
        &[
            (".nubo/pipelines/ci.yml", &first),
            (".nubo/pipelines/taken.yml", &taken),
            (".nubo/pipelines/bad.yml", "pipeline: ["),
        ],
    )
    .await;
    let mut list = Value::Null;
    for _ in 0..100 {
        list = api(
            &server,
            &alice,
            Method::GET,
            "/pipelines/ci/executions",
            None,
        )
        .await
        .1;
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let one = list[0]["id"]
        .as_str()
        .expect("the file's pipeline ran")
        .to_string();
    let e = wait_until(&server, &alice, "ci", &one, "its approval", |e| {
        action(e, 2)["status"] == "InProgress"
    })
    .await;
    assert_eq!(action(&e, 2)["summary"], "version one");
    // The files that were not read are listed with why, to readers only.
    let (_, problems) = api(
        &server,
        &alice,
        Method::GET,
        "/pipelines/definitions/problems",
        None,
    )
    .await;
    let why = |path: &str| {
        problems
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == path)
            .map(|p| {
                (
                    p["branch"].clone(),
                    p["problem"].as_str().unwrap().to_string(),
                )
            })
    };
    let (branch, bad) = why(".nubo/pipelines/bad.yml").expect("bad.yml listed");
    assert_eq!(branch, "main");
    assert!(
        bad.starts_with("2:1: ") && bad.contains("did not find expected node content"),
        "with its position: {bad}"
    );
    let (_, conflict) = why(".nubo/pipelines/taken.yml").expect("taken.yml listed");
    assert!(
        conflict.contains("names pipeline taken, which is defined elsewhere"),
        "{conflict}"
    );
    assert!(why(".nubo/pipelines/ci.yml").is_none());
    let carol = server.user_with_token("carol", false);
    let (_, none) = api(
        &server,
        &carol,
        Method::GET,
        "/pipelines/definitions/problems",
        None,
    )
    .await;
    assert_eq!(none, json!([]), "carol cannot read web");
    // The file changes with the code: the next commit runs its own version.
    push(
        &server,
        &alice,
        "web",
        &[(".nubo/pipelines/ci.yml", &in_repo_yaml("ci", "version two"))],
    )
    .await;
    let mut two = String::new();
    for _ in 0..100 {
        let l = api(
            &server,
            &alice,
            Method::GET,
            "/pipelines/ci/executions",
            None,
        )
        .await
        .1;
        if let Some(id) = l
            .as_array()
            .filter(|l| l.len() == 2)
            .and_then(|l| l[0]["id"].as_str())
        {
            two = id.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!two.is_empty(), "the second push ran it again");
    let reject = json!({"stage": "Approve", "action": "Gate", "result": "Rejected", "comment": ""});
    api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/ci/executions/{one}/approval"),
        Some(reject),
    )
    .await;
    let e = wait_until(
        &server,
        &alice,
        "ci",
        &two,
        "the second at its approval",
        |e| action(e, 2)["status"] == "InProgress",
    )
    .await;
    assert_eq!(action(&e, 2)["summary"], "version two");
    // It is changed in the repository, not through the API.
    let (s, body) = api(
        &server,
        &alice,
        Method::PUT,
        "/pipelines/ci",
        Some(declaration("ci")),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web:.nubo/pipelines/ci.yml"),
        "{body}"
    );
    // A file cannot take over another pipeline's name: the API pipeline
    // runs its own declaration (its gate asks "Ship …?"), never the file's.
    let (_, taken_runs) = api(
        &server,
        &alice,
        Method::GET,
        "/pipelines/taken/executions",
        None,
    )
    .await;
    let oldest = taken_runs.as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let e = wait_until(
        &server,
        &alice,
        "taken",
        &oldest,
        "the API pipeline at its gate",
        |e| action(e, 2)["status"] == "InProgress",
    )
    .await;
    assert!(
        action(&e, 2)["summary"]
            .as_str()
            .unwrap()
            .starts_with("Ship "),
        "{e:#}"
    );
    let (_, d) = api(&server, &alice, Method::GET, "/pipelines/taken", None).await;
    assert!(!d.to_string().contains("not mine"), "{d}");
    let bob = server.user_with_token("bob", false);
    assert_eq!(
        api(&server, &bob, Method::GET, "/pipelines/ci", None)
            .await
            .0,
        404
    );
}
