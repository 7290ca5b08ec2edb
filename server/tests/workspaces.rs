//! Workspaces on the local backend, end to end against the real binary:
//! lifecycle, files (with hostile paths), exec, git from inside the
//! workspace, and bad requests (terminals, previews and the idle stop are
//! in workspace_sessions.rs).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

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
