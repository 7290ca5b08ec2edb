//! A workspace over time: terminals that replay, are shared and survive a
//! server restart; previews; the idle stop.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn terminals_replay_share_flow_control_and_survive_a_server_restart() {
    let mut server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(&server, &token, json!({"name": "term"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    let (s, t) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/terminals"),
        Some(json!({"cols": 100, "rows": 30})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let tid = t["id"].as_str().unwrap().to_string();

    let mut a = attach(&server, &token, &id, &tid).await;
    let hello = a.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"hello\""));
    type_line(&mut a, "echo answer-$((6*7))").await;
    read_until(&mut a, "answer-42").await;

    // A second viewer gets the scrollback and then the same live output.
    let mut b = attach(&server, &token, &id, &tid).await;
    let replay = read_until(&mut b, "answer-42").await;
    assert!(replay.contains("echo answer-$((6*7))"));
    type_line(&mut a, "echo both-$((2+3))").await;
    read_until(&mut a, "both-5").await;
    read_until(&mut b, "both-5").await;
    drop(b);

    // Flow control: without acks the agent stops at the window.
    type_line(
        &mut a,
        "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo flood-done",
    )
    .await;
    let mut unacked = 0usize;
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), a.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => unacked += bytes.len(),
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    assert!(
        unacked <= 512 * 1024 + 64 * 1024,
        "{unacked} bytes sent unacknowledged"
    );
    assert!(unacked >= 256 * 1024, "only {unacked} bytes arrived");
    a.send(Message::Text(
        json!({"type": "ack", "bytes": unacked}).to_string().into(),
    ))
    .await
    .unwrap();
    read_until(&mut a, "flood-done").await;
    type_line(
        &mut a,
        "cd /tmp && export MARK=kept-$((40+2)) && echo marked-$((1+1))",
    )
    .await;
    read_until(&mut a, "marked-2").await;
    drop(a);

    // The server dies; the agent and the shell do not.
    server.kill();
    let data = server.data_dir.clone();
    let server2 = Server::start_in(&data, &[], &[]);
    let (s, list) = api(
        &server2,
        &token,
        reqwest::Method::GET,
        &format!("/workspaces/{id}/terminals"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list[0]["id"], tid.as_str());
    assert_eq!(list[0]["alive"], true);
    let mut c = attach(&server2, &token, &id, &tid).await;
    let replay = read_until(&mut c, "flood-done").await;
    assert!(replay.contains("flood-done"));
    type_line(&mut c, "echo $MARK $(pwd)").await;
    read_until(&mut c, "kept-42 /tmp").await;

    // Closing the terminal ends the shell; the viewer hears the exit.
    type_line(&mut c, "exit 5").await;
    let mut exit = None;
    while let Some(Ok(m)) = c.next().await {
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "exit" {
                exit = v["code"].as_i64();
                break;
            }
        }
    }
    assert_eq!(exit, Some(5));
    drop(server);
}

#[tokio::test]
async fn previews_reach_a_port_in_the_workspace_owner_only_unless_shared() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(&server, &token, json!({"name": "web"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    let http = client();
    http.put(server.url(&format!("/api/v1/workspaces/{id}/files/site/index.html")))
        .bearer_auth(&token)
        .body("<h1>preview works</h1>")
        .send()
        .await
        .unwrap();
    let (_, t) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/terminals"),
        None,
    )
    .await;
    let mut term = attach(&server, &token, &id, t["id"].as_str().unwrap()).await;
    // A port only this test uses: 18000 + pid-derived offset.
    let port = 18000 + (std::process::id() % 2000) as u16;
    type_line(
        &mut term,
        &format!("cd site && python3 -m http.server {port} --bind 127.0.0.1"),
    )
    .await;
    let mut listed = false;
    for _ in 0..100 {
        let (_, ports) = api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/workspaces/{id}/ports"),
            None,
        )
        .await;
        if ports.as_array().unwrap().iter().any(|p| p["port"] == port) {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(listed, "the port shows up in /ports");
    // The owner is sent to the preview's own origin, and served there.
    let (r, cookie) = open_preview(&server, Some(&token), &id, port, "/index.html").await;
    assert_eq!(r.status(), 200);
    assert_ne!(
        r.url().origin(),
        reqwest::Url::parse(&server.base).unwrap().origin(),
        "the preview is on Nubo's origin"
    );
    assert!(cookie.is_some());
    assert_eq!(r.text().await.unwrap(), "<h1>preview works</h1>");
    // Not for others, not for anonymous visitors.
    let bob = server.user_with_token("bob", false);
    let (r, _) = open_preview(&server, Some(&bob), &id, port, "/index.html").await;
    assert_eq!(r.status(), 404);
    let (r, _) = open_preview(&server, None, &id, port, "/index.html").await;
    assert_eq!(r.status(), 401);
    // A port nothing in the workspace listens on (the server's own) is refused.
    let own: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let (r, _) = open_preview(&server, Some(&token), &id, own, "/").await;
    assert_eq!(r.status(), 502);
    // Shared: public, and sandboxed.
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("/workspaces/{id}"),
        Some(json!({"preview_shared": true})),
    )
    .await;
    assert_eq!(s, 200);
    let (r, _) = open_preview(&server, None, &id, port, "/index.html").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    drop(http);
}

#[tokio::test]
async fn an_idle_workspace_stops_by_itself() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let ws = create_ws(
        &server,
        &token,
        json!({"name": "idle", "idle_timeout_seconds": 2}),
    )
    .await;
    let id = ws["id"].as_str().unwrap().to_string();
    let mut state = String::new();
    for _ in 0..100 {
        let (_, ws) = api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/workspaces/{id}"),
            None,
        )
        .await;
        state = ws["state"].as_str().unwrap().to_string();
        if state == "stopped" {
            assert_eq!(ws["error"], "stopped after 2 s without use");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(state, "stopped");
}
