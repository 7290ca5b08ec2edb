//! Attacks through builds that must fail: a repository whose buildspec is a
//! link to a host file, a project owner reading stored secrets that are not
//! theirs.

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

#[tokio::test]
async fn a_build_reads_only_the_stored_values_its_owner_may_read() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root", true);
    let token = server.user_with_token("alice", false);
    for (path, value) in [
        ("/secrets/prod-db", "prod-db-password-123"),
        ("/secrets/ci-deploy", "ci-deploy-key-456"),
        ("/parameters/prod/api", "prod-api-token-789"),
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
    // The attack: print a secret that is not yours, encoded past masking.
    create_repo(&server, &token, "thief").await;
    let spec = "version: 0.2\nenv:\n  secrets-manager:\n    X: prod-db\nphases:\n  build:\n    commands:\n      - echo \"$X\" | rev\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, log) = run_build(&server, &token, "thief-ci", "thief").await;
    assert_eq!(b["status"], "FAILED", "{b}");
    assert!(!log.contains("321-drowssap"), "{log}");
    let denied = b["reason"].as_str().unwrap().to_string();
    assert!(
        denied.contains("does not exist or alice may not read it"),
        "{denied}"
    );
    // A name that does not exist gets the very same answer: no enumeration.
    let spec = "version: 0.2\nenv:\n  secrets-manager:\n    X: prod-db-nope\nphases:\n  build:\n    commands:\n      - echo hi\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, _) = run_build(&server, &token, "thief-ci2", "thief").await;
    assert_eq!(
        b["reason"].as_str().unwrap(),
        denied.replace("prod-db", "prod-db-nope"),
        "{b}"
    );

    // With a policy the owner reads what it names, and nothing else.
    let (s, b) = api(
        &server,
        &admin,
        reqwest::Method::PUT,
        "/users/alice/policies/ci",
        Some(json!({"Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": "arn:nubo:secretsmanager:::secret:ci-*"}]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let spec = "version: 0.2\nenv:\n  secrets-manager:\n    X: ci-deploy\nphases:\n  build:\n    commands:\n      - test \"$X\" = ci-deploy-key-456\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, _) = run_build(&server, &token, "thief-ci3", "thief").await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    let spec = "version: 0.2\nenv:\n  parameter-store:\n    X: /prod/api\nphases:\n  build:\n    commands:\n      - echo hi\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, _) = run_build(&server, &token, "thief-ci4", "thief").await;
    assert_eq!(b["status"], "FAILED", "{b}");

    // Every decision is in the audit log, and the simulator agrees.
    let (_, audit) = api(&server, &admin, reqwest::Method::GET, "/audit", None).await;
    let entries = audit.as_array().unwrap();
    let seen = |action: &str, arn: &str, allowed: bool| {
        entries.iter().any(|e| {
            e["user"] == "alice"
                && e["action"] == action
                && e["repo"] == arn
                && e["allowed"] == allowed
        })
    };
    assert!(
        seen(
            "secretsmanager:GetSecretValue",
            "arn:nubo:secretsmanager:::secret:prod-db",
            false
        ),
        "{audit}"
    );
    assert!(
        seen(
            "secretsmanager:GetSecretValue",
            "arn:nubo:secretsmanager:::secret:ci-deploy",
            true
        ),
        "{audit}"
    );
    assert!(
        seen(
            "ssm:GetParameters",
            "arn:nubo:ssm:::parameter/prod/api",
            false
        ),
        "{audit}"
    );
    for (name, allowed) in [("ci-deploy", true), ("prod-db", false)] {
        let (s, d) = api(
            &server,
            &admin,
            reqwest::Method::POST,
            "/policy-simulator",
            Some(json!({"user": "alice", "action": "secretsmanager:GetSecretValue", "name": name})),
        )
        .await;
        assert_eq!(s, 200, "{d}");
        assert_eq!(d["allowed"], allowed, "{name}: {d}");
    }
}
