//! Attacks through builds that must fail: a repository whose buildspec is a
//! link to a host file.

mod common;

use common::*;
use serde_json::json;

/// Creates project `name` for `repo` (owned by the token's user) and runs
/// one build; answers the finished build and its log.
async fn run_build(
    server: &Server,
    token: &str,
    name: &str,
    repo: &str,
) -> (serde_json::Value, String) {
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
    let id = b["id"].as_str().unwrap().to_string();
    let b = wait_build(server, token, &id).await;
    let log = build_log(server, token, &id).await;
    (b, log)
}

#[tokio::test]
async fn a_buildspec_that_links_to_a_host_file_is_not_read() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "linked").await;
    // A host file the build must never read (in YAML, so that reading it
    // would run it and print it).
    let host = server.data_dir.with_extension("host-secret.yml");
    std::fs::write(
        &host,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo HOST-SECRET-LINE\n",
    )
    .unwrap();
    push_files(
        &server,
        &token,
        "linked",
        &[("README.md", "x\n")],
        &[("buildspec.yml", host.to_str().unwrap())],
    );
    let (b, log) = run_build(&server, &token, "linked-ci", "linked").await;
    assert_eq!(b["status"], "FAILED", "{b}");
    assert!(
        b["reason"].as_str().unwrap().contains("symbolic link"),
        "{b}"
    );
    assert!(!log.contains("HOST-SECRET-LINE"), "{log}");
}
