//! Builds on the server: projects over the API, builds of a pushed branch
//! with the repository's buildspec, live logs, secrets from the stores
//! masked, artifacts as a zip, stopping, the CLI, and a restart (reports,
//! the queue's timeout and the log cap are in build_limits.rs).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const BUILDSPEC: &str = "version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /prod/db/password
  secrets-manager:
    API_KEY: deploy-keys:api
  exported-variables: [VERSION]
phases:
  build:
    commands:
      - echo \"building $CODEBUILD_RESOLVED_SOURCE_VERSION for $STAGE\"
      - echo \"password=$DB_PASSWORD key=$API_KEY\"
      - mkdir -p out && echo artifact > out/app.txt
      - export VERSION=1.0.$CODEBUILD_BUILD_NUMBER
artifacts:
  files: ['**/*']
  base-directory: out
";

#[tokio::test]
async fn a_pushed_branch_builds_with_secrets_masked_and_artifacts_kept() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("alice", true);
    create_repo(&server, &admin, "app").await;
    let commit = push(&server, &admin, "app", &[("buildspec.yml", BUILDSPEC)]).await;
    for (path, value) in [
        ("/parameters/prod/db/password", "correct-horse"),
        ("/secrets/deploy-keys", "{\"api\": \"k-123456\"}"),
    ] {
        let (s, b) = api(
            &server,
            &admin,
            reqwest::Method::PUT,
            path,
            Some(json!({"value": value})),
        )
        .await;
        assert_eq!(s, 204, "{b}");
    }
    let (s, p) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/projects",
        Some(json!({"name": "app-ci", "repo": "app", "env": {"STAGE": "test"}})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (s, b) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/projects/app-ci/builds",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["status"], "QUEUED");
    let id = b["id"].as_str().unwrap().to_string();

    // A live viewer gets the log and the end.
    let mut stream = client()
        .get(server.url(&format!("/api/v1/builds/{id}/log/stream")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("event: end") {
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
            .await
            .expect("the stream keeps going")
            .unwrap()
            .expect("the stream ends with an end event");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("Entering phase BUILD"), "{seen}");
    assert!(seen.contains("event: phase"), "{seen}");
    assert!(seen.contains("\"status\":\"SUCCEEDED\""), "{seen}");

    let b = wait_build(&server, &admin, &id).await;
    assert_eq!(
        b["status"],
        "SUCCEEDED",
        "{b}\n{}",
        build_log(&server, &admin, &id).await
    );
    assert_eq!(b["commit"], commit.as_str());
    assert_eq!(b["number"], 1);
    assert_eq!(b["exported_variables"], json!([["VERSION", "1.0.1"]]));
    let text = build_log(&server, &admin, &id).await;
    assert!(
        text.contains(&format!("building {commit} for test")),
        "{text}"
    );
    assert!(text.contains("password=*** key=***"), "{text}");
    assert!(
        !text.contains("correct-horse") && !text.contains("k-123456"),
        "{text}"
    );

    // The artifact, as a zip that unzip reads.
    let zip = client()
        .get(server.url(&format!("/api/v1/builds/{id}/artifacts.zip")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(zip.status(), 200);
    assert!(
        zip.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("app-ci-1.zip"),
        "without an artifact name the zip is PROJECT-NUMBER"
    );
    let bytes = zip.bytes().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.zip"), &bytes).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", "import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(z.read('app.txt').decode(), end='')"])
        .arg(tmp.path().join("a.zip"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "artifact\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // History, and other users see nothing.
    let (_, history) = api(
        &server,
        &admin,
        reqwest::Method::GET,
        "/projects/app-ci/builds",
        None,
    )
    .await;
    assert_eq!(history.as_array().unwrap().len(), 1);
    let bob = server.user_with_token("bob", false);
    let (s, _) = api(
        &server,
        &bob,
        reqwest::Method::GET,
        &format!("/builds/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = api(&server, &bob, reqwest::Method::GET, "/parameters", None).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn failures_are_reported_and_running_builds_can_be_stopped() {
    let server = Server::start(&[("NUBO_BUILD_CONCURRENCY", "1")]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    push(
        &server,
        &token,
        "app",
        &[("README.md", "no buildspec here\n")],
    )
    .await;
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects",
        Some(json!({"name": "fromfile", "repo": "app"})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/fromfile/builds",
        None,
    )
    .await;
    let b = wait_build(&server, &token, b["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "FAILED");
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("no buildspec at buildspec.yml"),
        "{b}"
    );
    // A branch that does not exist.
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/fromfile/builds",
        Some(json!({"branch": "nope"})),
    )
    .await;
    let b = wait_build(&server, &token, b["id"].as_str().unwrap()).await;
    assert!(
        b["reason"].as_str().unwrap().contains("no branch nope"),
        "{b}"
    );
    // Bad input changes nothing.
    for (body, status) in [
        (json!({"name": "x", "repo": "app"}), 422),
        (json!({"name": "ok-name", "repo": "missing"}), 404),
        (
            json!({"name": "ok-name", "repo": "app", "timeout_minutes": 1}),
            422,
        ),
        (
            json!({"name": "ok-name", "repo": "app", "buildspec": "version: 0.2\nphases: [\n"}),
            422,
        ),
        (
            json!({"name": "ok-name", "repo": "app", "env": {"CODEBUILD_X": "1"}}),
            422,
        ),
    ] {
        let (s, e) = api(
            &server,
            &token,
            reqwest::Method::POST,
            "/projects",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, status, "{body} -> {e}");
    }

    // An inline buildspec that runs long: one at a time, the second waits.
    let (s, _) = api(&server, &token, reqwest::Method::POST, "/projects", Some(json!({
        "name": "slow", "repo": "app",
        "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 60\n"
    }))).await;
    assert_eq!(s, 201);
    let (_, first) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/slow/builds",
        None,
    )
    .await;
    let (_, second) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/slow/builds",
        None,
    )
    .await;
    let first = first["id"].as_str().unwrap().to_string();
    let second = second["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        if build_log(&server, &token, &first)
            .await
            .contains("\nstarted\n")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, b2) = api(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/builds/{second}"),
        None,
    )
    .await;
    assert_eq!(
        b2["status"], "QUEUED",
        "the concurrency limit holds the second back"
    );
    let (s, stopped) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/builds/{first}/stop"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(stopped["status"], "STOPPED", "{stopped}");
    assert!(build_log(&server, &token, &first)
        .await
        .contains("Phase complete: BUILD State: STOPPED"));
    // The queued one starts, and is stopped while running... after a restart.
    for _ in 0..100 {
        let (_, b) = api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/builds/{second}"),
            None,
        )
        .await;
        if b["status"] == "IN_PROGRESS"
            && build_log(&server, &token, &second)
                .await
                .contains("\nstarted\n")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut server = server;
    server.kill();
    let data = server.data_dir.clone();
    let restarted = Server::start_in(&data, &[], &[]);
    let (_, b) = api(
        &restarted,
        &token,
        reqwest::Method::GET,
        &format!("/builds/{second}"),
        None,
    )
    .await;
    assert_eq!(b["status"], "FAILED", "{b}");
    assert_eq!(
        b["reason"],
        "the server stopped while the build was running"
    );
}

#[tokio::test]
async fn the_cli_manages_projects_and_stores_and_queues_builds_the_server_runs() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    push(&server, &token, "app", &[("buildspec.yml", "version: 0.2\nenv:\n  parameter-store:\n    P: /ci/p\nphases:\n  build:\n    commands:\n      - echo \"p=$P\"\n")]).await;
    let out = server.cli(
        &["parameter", "put", "/ci/p", "--value-stdin"],
        Some("from-the-cli\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stored values are read by a project's builds only as far as its
    // owner's policies allow.
    let admin = server.user_with_token("root", true);
    let (s, b) = api(
        &server,
        &admin,
        reqwest::Method::PUT,
        "/users/alice/policies/ci-parameters",
        Some(
            json!({"Statement": {"Effect": "Allow", "Action": "ssm:GetParameters",
                                  "Resource": "arn:nubo:ssm:::parameter/ci/*"}}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let out = server.cli(&["parameter", "list"], None);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listed.contains("/ci/p") && !listed.contains("from-the-cli"),
        "{listed}"
    );
    let out = server.cli(
        &[
            "project", "create", "cli-ci", "--owner", "alice", "--repo", "app",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["project", "start", "cli-ci", "--as", "alice"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let b = wait_build(&server, &token, &id).await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    assert!(build_log(&server, &token, &id).await.contains("p=***"));
    let out = server.cli(&["project", "builds", "cli-ci"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCEEDED"));
    // The key rotates; the stored value still opens.
    let out = server.cli(&["key", "rotate"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["project", "start", "cli-ci", "--as", "alice"], None);
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let b = wait_build(&server, &token, &id).await;
    assert_eq!(
        b["status"],
        "SUCCEEDED",
        "{b}: {}",
        build_log(&server, &token, &id).await
    );
}

/// A conformance case: name, buildspec, final status, log lines present and absent.
type Case<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], &'a [&'a str]);

/// The conformance rules of tests/buildspec.rs, run through the server:
/// the same buildspecs end the same way.
#[tokio::test]
async fn conformance_rules_hold_on_the_server_too() {
    let server = Server::start(&[("NUBO_BUILD_CONCURRENCY", "4")]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    push(&server, &token, "app", &[("README.md", "x\n")]).await;
    let cases: &[Case] = &[
        (
            "post-build-after-failure",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo first\n      - ls /no/such/dir\n      - echo never\n    finally:\n      - echo finally ran\n  post_build:\n    commands:\n      - echo succeeding=$CODEBUILD_BUILD_SUCCEEDING\n",
            "FAILED",
            &["Error while executing command: ls /no/such/dir. Reason: exit status 2", "finally ran", "succeeding=0"],
            &["\nnever"],
        ),
        (
            "install-failure",
            "version: 0.2\nphases:\n  install:\n    commands: [\"false\"]\n  build:\n    commands: [echo building]\n",
            "FAILED",
            &["Phase complete: INSTALL State: FAILED"],
            &["Entering phase BUILD"],
        ),
        (
            "continue",
            "version: 0.2\nphases:\n  pre_build:\n    on-failure: CONTINUE\n    commands: [\"false\"]\n  build:\n    commands: [echo building-$CODEBUILD_BUILD_SUCCEEDING]\n",
            "FAILED",
            &["building-0"],
            &[],
        ),
        (
            "one-shell",
            "version: 0.2\nphases:\n  install:\n    commands:\n      - mkdir -p sub && cd sub\n      - export KEPT=yes\n  build:\n    commands:\n      - echo \"cwd=$(basename $(pwd)) kept=$KEPT\"\n",
            "SUCCEEDED",
            &["cwd=sub kept=yes"],
            &[],
        ),
        (
            "separate-shells",
            "version: 0.1\nphases:\n  install:\n    commands:\n      - mkdir -p sub && cd sub\n      - export KEPT=yes\n  build:\n    commands:\n      - echo \"cwd=$(basename $(pwd)) kept=$KEPT\"\n",
            "SUCCEEDED",
            &["cwd=src kept=\n"],
            &[],
        ),
    ];
    let mut ids = Vec::new();
    for (name, spec, ..) in cases {
        let (s, p) = api(
            &server,
            &token,
            reqwest::Method::POST,
            "/projects",
            Some(json!({"name": name, "repo": "app", "buildspec": spec})),
        )
        .await;
        assert_eq!(s, 201, "{p}");
        let (_, b) = api(
            &server,
            &token,
            reqwest::Method::POST,
            &format!("/projects/{name}/builds"),
            None,
        )
        .await;
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    for ((name, _, status, present, absent), id) in cases.iter().zip(&ids) {
        let b = wait_build(&server, &token, id).await;
        let text = build_log(&server, &token, id).await;
        assert_eq!(b["status"].as_str(), Some(*status), "{name}: {text}");
        for p in *present {
            assert!(text.contains(p), "{name}: no {p:?} in\n{text}");
        }
        for a in *absent {
            assert!(!text.contains(a), "{name}: {a:?} in\n{text}");
        }
    }
}
