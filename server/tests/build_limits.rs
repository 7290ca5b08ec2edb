//! What a build keeps and what it is held to: test reports, the queue's
//! timeout, the cap on its log.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn test_reports_are_kept_on_the_build() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    push(&server, &token, "app", &[("README.md", "x\n")]).await;
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p r\n      - printf '<testsuite name=\"s\"><testcase name=\"ok\"/><testcase name=\"bad\"><failure message=\"nope\"/></testcase></testsuite>' > r/t.xml\nreports:\n  unit:\n    files: ['r/*.xml']\n";
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects",
        Some(json!({"name": "rep", "repo": "app", "buildspec": spec})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/rep/builds",
        None,
    )
    .await;
    let b = wait_build(&server, &token, b["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "SUCCEEDED");
    assert_eq!(b["reports"][0]["group"], "unit");
    assert_eq!(
        (
            b["reports"][0]["passed"].as_i64(),
            b["reports"][0]["failed"].as_i64()
        ),
        (Some(1), Some(1))
    );
    // The build page shows them.
    let (cookie, _) = sign_in(&server, "alice", "password-of-the-test").await;
    let page = client()
        .get(server.url(&format!("/builds/{}", b["id"].as_str().unwrap())))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("data-testid=\"reports\"")
            && page.contains("1 failed")
            && page.contains("nope"),
        "{page}"
    );
}

#[tokio::test]
async fn a_build_that_waits_too_long_in_the_queue_fails() {
    let server = Server::start(&[
        ("NUBO_BUILD_CONCURRENCY", "1"),
        ("NUBO_BUILD_QUEUE_TIMEOUT_SECONDS", "2"),
    ]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    push(&server, &token, "app", &[("README.md", "x\n")]).await;
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects",
        Some(json!({
            "name": "slow", "repo": "app",
            "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [sleep 30]\n"
        })),
    )
    .await;
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
    let b = wait_build(&server, &token, second["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "FAILED");
    assert_eq!(b["reason"], "waited in the queue longer than 2 s");
    let (_, stopped) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/builds/{}/stop", first["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(stopped["status"], "STOPPED");
}

#[tokio::test]
async fn a_flood_of_output_is_capped_and_the_server_stays_responsive() {
    let server = Server::start(&[("NUBO_BUILD_LOG_CAP_BYTES", "100000")]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    push(&server, &token, "app", &[("README.md", "x\n")]).await;
    let (s, _) = api(&server, &token, reqwest::Method::POST, "/projects", Some(json!({
        "name": "flood", "repo": "app",
        "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n      - seq -f '%090g' 1 300000\n      - echo after-the-flood\n"
    }))).await;
    assert_eq!(s, 201);
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/flood/builds",
        None,
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let t = std::time::Instant::now();
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let b = wait_build(&server, &token, &id).await;
    assert_eq!(b["status"], "SUCCEEDED");
    let text = build_log(&server, &token, &id).await;
    assert!(text.len() < 200_000, "the log kept {} bytes", text.len());
    assert!(
        text.contains("Output beyond 100000 bytes is not kept"),
        "{}",
        &text[text.len().saturating_sub(2000)..]
    );
    assert!(text.contains("Phase complete: BUILD State: SUCCEEDED"));
}
