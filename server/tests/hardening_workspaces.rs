//! Attacks from inside a workspace that must fail: making the server read a
//! FIFO or `/dev/zero` where it expects `.git/HEAD`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_hostile_git_head_cannot_hang_the_server() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    repo_with_readme(&server, &token, "app").await;
    let ws = create_ws(&server, &token, json!({"name": "dev", "repo": "app"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    assert_eq!(ws["branch"], "main");
    for plant in [
        "rm -f .git/HEAD && mkfifo .git/HEAD",
        "rm -f .git/HEAD && ln -s /dev/zero .git/HEAD",
        "rm -f .git/HEAD && head -c 10000000 /dev/zero | tr '\\0' x > .git/HEAD",
    ] {
        let out = exec(&server, &token, &id, &["sh", "-c", plant]).await;
        assert_eq!(out["exit_code"], 0, "{out}");
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            client()
                .get(server.url(&format!("/api/v1/workspaces/{id}")))
                .bearer_auth(&token)
                .send(),
        )
        .await
        .unwrap_or_else(|_| panic!("the server hung reading .git/HEAD after {plant:?}"))
        .unwrap();
        assert_eq!(r.status(), 200);
        let w: serde_json::Value = r.json().await.unwrap();
        assert!(w["branch"].is_null(), "{w}");
    }
}

#[tokio::test]
async fn uploads_and_exec_bodies_are_capped() {
    let server = Server::start(&[("NUBO_MAX_BODY_BYTES", "65536")]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(&server, &token, json!({"name": "dev"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    let http = client();
    let url = server.url(&format!("/api/v1/workspaces/{id}/files/big.bin"));
    // Declared too large.
    let r = http
        .put(&url)
        .bearer_auth(&token)
        .body(vec![b'x'; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Streamed without a length: cut off, and nothing is kept.
    let status = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = server.base.trim_start_matches("http://").to_string();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "PUT /api/v1/workspaces/{id}/files/big.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..20 {
            let chunk = vec![b'y'; 8192];
            if tcp
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .is_err()
                || tcp.write_all(&chunk).await.is_err()
                || tcp.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
        let _ = tcp.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        status.contains(" 4") || status.contains(" 5") || status.is_empty(),
        "{status}"
    );
    let out = exec(
        &server,
        &token,
        &id,
        &["sh", "-c", "ls -a; test ! -e big.bin"],
    )
    .await;
    assert_eq!(out["exit_code"], 0, "{out}");
    assert!(
        !out["stdout"].as_str().unwrap().contains("big.bin"),
        "{out}"
    );
    // An exec body is capped the same way.
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["cat"], "stdin": "z".repeat(70_000)})),
    )
    .await;
    assert_eq!(s, 413);
    // Within the cap all is well.
    let r = http
        .put(&url)
        .bearer_auth(&token)
        .body(vec![b'x'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
