//! Workspaces on the local backend, end to end against the real binary:
//! lifecycle, files (with hostile paths), exec, git from inside the
//! workspace, terminals over WebSocket (replay, several viewers, flow
//! control, a server restart), previews and the idle stop.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_workspace_has_the_repository_files_exec_and_git() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    repo_with_readme(&server, &token, "app").await;
    let ws = create_ws(&server, &token, json!({"name": "dev", "repo": "app"})).await;
    let id = ws["id"].as_str().unwrap().to_string();
    assert_eq!(ws["state"], "running");
    assert_eq!(ws["branch"], "main");
    assert_eq!(ws["backend"], "local");
    let http = client();
    let files = |p: &str| server.url(&format!("/api/v1/workspaces/{id}/files{p}"));

    // The checkout, listed and read.
    let (status, root) = api(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/workspaces/{id}/files"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = root["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"README.md") && names.contains(&".git"),
        "{names:?}"
    );
    let r = http
        .get(files("/README.md"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-nubo-kind"], "file");
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(r.text().await.unwrap(), "# Hello from the repo\n");

    // Save with the right ETag; a stale one is refused and changes nothing.
    let r = http
        .put(files("/README.md"))
        .bearer_auth(&token)
        .header("if-match", &etag)
        .body("# Edited in the workspace\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .put(files("/README.md"))
        .bearer_auth(&token)
        .header("if-match", &etag)
        .body("lost update")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("changed on disk"));
    let now = http
        .get(files("/README.md"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(now, "# Edited in the workspace\n");

    // Folders: create, write into, move, list, delete.
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/mkdir"),
        Some(json!({"path": "src/lib"})),
    )
    .await;
    assert_eq!(s, 201);
    let r = http
        .put(files("/src/lib/a.py"))
        .bearer_auth(&token)
        .body("print('hi')\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/move"),
        Some(json!({"from": "src/lib", "to": "pkg"})),
    )
    .await;
    assert_eq!(s, 204);
    let (s, listing) = api(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/workspaces/{id}/files/pkg"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(listing["entries"][0]["name"], "a.py");
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/move"),
        Some(json!({"from": "pkg", "to": "README.md"})),
    )
    .await;
    assert_eq!(s, 409, "moving over an existing file is refused");

    // Hostile paths, raw and encoded, and through a symlink made in the shell.
    for bad in [
        "/..%2F..%2Fetc%2Fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/pkg/..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = http
            .get(files(bad))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 403 || r.status() == 404 || r.status() == 400,
            "{bad}: {}",
            r.status()
        );
        assert!(
            !r.text().await.unwrap().contains("root:"),
            "{bad} leaked /etc/passwd"
        );
    }
    let out = exec(&server, &token, &id, &["ln", "-s", "/etc", "escape"]).await;
    assert_eq!(out["exit_code"], 0, "{out}");
    exec(&server, &token, &id, &["ln", "-s", "/etc/passwd", "leak"]).await;
    for bad in ["/escape/passwd", "/leak", "/escape"] {
        let r = http
            .get(files(bad))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{bad}");
        let r = http
            .put(files(bad))
            .bearer_auth(&token)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{bad}");
    }
    let r = http
        .put(files("/escape/nubo-test-should-not-exist"))
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!std::path::Path::new("/etc/nubo-test-should-not-exist").exists());
    // Deleting the link removes the link, not /etc/passwd.
    let r = http
        .delete(files("/leak"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(std::path::Path::new("/etc/passwd").exists());
    exec(&server, &token, &id, &["rm", "escape"]).await;

    // Changes made in the shell arrive as events (what refreshes the tree).
    let mut events = http
        .get(server.url(&format!("/api/v1/workspaces/{id}/events")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    exec(
        &server,
        &token,
        &id,
        &[
            "sh",
            "-c",
            "mkdir -p from-shell && echo x > from-shell/new.txt",
        ],
    )
    .await;
    let mut seen = String::new();
    while !seen.contains("from-shell/new.txt") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), events.chunk())
            .await
            .unwrap_or_else(|_| panic!("no event for the new file; saw {seen:?}"))
            .unwrap()
            .expect("the event stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: fs"), "{seen}");
    drop(events);

    // Exec: exit codes, output, cwd, env, timeouts, bad input.
    let out = exec(&server, &token, &id, &["git", "log", "--format=%s"]).await;
    assert_eq!(out["stdout"], "first commit\n");
    let out = exec(&server, &token, &id, &["sh", "-c", "echo err >&2; exit 3"]).await;
    assert_eq!(
        (out["exit_code"].as_i64(), out["stderr"].as_str()),
        (Some(3), Some("err\n"))
    );
    let (s, out) = api(&server, &token, reqwest::Method::POST, &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["sh", "-c", "pwd; echo $GREETING"], "cwd": "pkg", "env": {"GREETING": "hello"}}))).await;
    assert_eq!(s, 200);
    assert!(
        out["stdout"]
            .as_str()
            .unwrap()
            .ends_with("/workspace/pkg\nhello\n"),
        "{out}"
    );
    let (_, out) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["sleep", "30"], "timeout_s": 1})),
    )
    .await;
    assert_eq!(out["timed_out"], true);
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["no-such-program-xyz"]})),
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["true"], "cwd": "../.."})),
    )
    .await;
    assert_eq!(s, 403);

    // The server's environment (and its secrets) stays out of the workspace.
    let out = exec(&server, &token, &id, &["env"]).await;
    assert!(
        !out["stdout"].as_str().unwrap().contains("NUBO_CACHE_DIR"),
        "{out}"
    );

    // git commit + push from inside, with the credential the agent hands out.
    let out = exec(
        &server,
        &token,
        &id,
        &[
            "sh",
            "-c",
            "git add -A && git commit -qm 'from the workspace' && git push -q origin main 2>&1",
        ],
    )
    .await;
    assert_eq!(out["exit_code"], 0, "{out}");
    let out = exec(
        &server,
        &token,
        &id,
        &["git", "config", "--global", "--list"],
    )
    .await;
    assert!(
        !out["stdout"].as_str().unwrap().contains("password"),
        "no secret in the git config"
    );
    let (s, commits) = api(
        &server,
        &token,
        reqwest::Method::GET,
        "/repos/app/commits?ref=main",
        None,
    )
    .await;
    assert_eq!(s, 200, "{commits}");
    assert!(
        commits.to_string().contains("from the workspace"),
        "{commits}"
    );

    // Other users neither see nor use it.
    let bob = server.user_with_token("bob", false);
    let (s, _) = api(
        &server,
        &bob,
        reqwest::Method::GET,
        &format!("/workspaces/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = api(
        &server,
        &bob,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["id"]})),
    )
    .await;
    assert_eq!(s, 404);

    // Stop: nothing runs, files stay; start again.
    let (s, ws) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/stop"),
        None,
    )
    .await;
    assert_eq!((s, ws["state"].as_str()), (200, Some("stopped")));
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/exec"),
        Some(json!({"command": ["true"]})),
    )
    .await;
    assert_eq!(s, 409);
    let (s, ws) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/start"),
        None,
    )
    .await;
    assert_eq!((s, ws["state"].as_str()), (200, Some("running")));
    let out = exec(&server, &token, &id, &["cat", "pkg/a.py"]).await;
    assert_eq!(out["stdout"], "print('hi')\n");

    // The CLI sees and drives the same workspace.
    let out = server.cli(
        &[
            "workspace",
            "exec",
            "alice/dev",
            "--",
            "sh",
            "-c",
            "echo cli; exit 7",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "cli\n");
    let out = server.cli(&["workspace", "list"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("running"));

    // Delete: gone, with its files.
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::DELETE,
        &format!("/workspaces/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert!(!server.data_dir.join("workspaces").join(&id).exists());
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/workspaces/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn bad_workspace_requests_are_refused() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    for (body, status) in [
        (json!({"name": "../x"}), 422),
        (json!({"name": "ok", "backend": "vm"}), 422),
        (json!({"name": "ok", "repo": "missing"}), 404),
        (json!({"name": "ok", "idle_timeout_minutes": -5}), 422),
        (json!({"name": "ok", "surprise": 1}), 422),
    ] {
        let (s, b) = api(
            &server,
            &token,
            reqwest::Method::POST,
            "/workspaces",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, status, "{body} -> {b}");
    }
    let (_, list) = api(&server, &token, reqwest::Method::GET, "/workspaces", None).await;
    assert_eq!(list, json!([]), "nothing was created");
    create_ws(&server, &token, json!({"name": "one", "start": false})).await;
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/workspaces",
        Some(json!({"name": "one"})),
    )
    .await;
    assert_eq!(s, 409);
}

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
