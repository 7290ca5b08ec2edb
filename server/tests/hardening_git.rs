//! Git pushes that must not leave the server in a state git never
//! accepted, or lose what it did accept: refs git refuses after the hook,
//! and the webhook deliveries of a push when the server dies right after
//! storing it.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn refs(server: &Server, token: &str, repo: &str, dir: &std::path::Path) -> Vec<String> {
    let url = server.url(&format!("/v1/repos/{repo}"));
    ok(git(dir, "alice", token, &["ls-remote", &url]))
        .lines()
        .filter_map(|l| l.split('\t').nth(1).map(str::to_string))
        .filter(|r| r != "HEAD")
        .collect()
}

#[tokio::test]
async fn refs_git_refuses_never_come_back_after_a_restart() {
    let mut server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "-b", "main", "src"]));
    let src = w.join("src");
    ok(git(
        &src,
        "x",
        "x",
        &["commit", "-q", "--allow-empty", "-m", "one"],
    ));
    ok(git(&src, "x", "x", &["tag", "-a", "t1", "-m", "a tag"]));
    let url = server.url("/v1/repos/app");
    ok(git(
        &src,
        "alice",
        &token,
        &["push", "-q", &url, "main", "t1"],
    ));
    let before = refs(&server, &token, "app", w);
    assert_eq!(
        before,
        ["refs/heads/main", "refs/tags/t1", "refs/tags/t1^{}"]
    );

    let mut said = Vec::new();
    for (args, why) in [
        // A branch that would point to a tag object.
        (
            vec!["push", url.as_str(), "t1:refs/heads/x"],
            "a branch must point to a commit",
        ),
        // A branch below an existing one.
        (
            vec!["push", url.as_str(), "HEAD:refs/heads/main/sub"],
            "cannot exist beside",
        ),
        // An atomic push with one bad ref: none of it.
        (
            vec![
                "push",
                "--atomic",
                url.as_str(),
                "HEAD:refs/heads/c",
                "t1:refs/heads/y",
            ],
            "a branch must point to a commit",
        ),
    ] {
        let out = git(&src, "alice", &token, &args);
        assert!(!out.status.success(), "{args:?} was accepted");
        said.push((
            args.join(" "),
            why,
            String::from_utf8_lossy(&out.stderr).to_string(),
        ));
        assert_eq!(refs(&server, &token, "app", w), before, "{args:?}");
    }

    // What the server stored is what git holds, also after a restart.
    server.kill();
    let data = server.data_dir.clone();
    let server = Server::start_in(&data, &[], &[]);
    assert_eq!(refs(&server, &token, "app", w), before);
    // And the pusher was told why.
    for (args, why, err) in said {
        assert!(err.contains(why), "{args}: {err}");
    }
}

#[tokio::test]
async fn a_crash_right_after_a_push_is_stored_loses_no_webhook_delivery() {
    let env = [
        ("NUBO_WEBHOOK_RETRY_BASE_MS", "100"),
        ("NUBO_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ];
    let mut server = Server::start(&env);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "hooked").await;
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (s, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/repos/hooked/webhooks",
        Some(json!({"url": hook_url, "events": ["createReference"]})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let commit = push_files(&server, &token, "hooked", &[("f", "1\n")], &[]);

    // The server dies after git's hook has stored a push but before git
    // is done (here: the hook run by hand in the dead server's working
    // copy, as git runs it, creating refs/heads/feature).
    server.kill();
    let cache = server.data_dir.with_extension("cache");
    let git_dir = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .flat_map(|run| std::fs::read_dir(run.path()).unwrap().flatten())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "git"))
        .expect("the working copy");
    let repo_id = git_dir.file_stem().unwrap().to_string_lossy().to_string();
    let mut hook = Command::new(BIN)
        .args(["hook", "pre-receive"])
        .env_remove("NUBO_CONFIG")
        .env("GIT_DIR", &git_dir)
        .env("NUBO_DATA_DIR", &server.data_dir)
        .env("NUBO_REPO_ID", &repo_id)
        .env("NUBO_PUSHER", "alice")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let line = format!("{} {commit} refs/heads/feature\n", "0".repeat(40));
        hook.stdin
            .take()
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
    }
    let out = hook.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // After the restart the stored push's delivery is sent.
    let data = server.data_dir.clone();
    let server = Server::start_in(&data, &env, &[]);
    for _ in 0..100 {
        if got
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains("refs/heads/feature"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bodies = got.lock().unwrap().clone();
    assert!(
        bodies.iter().any(|b| b.contains("refs/heads/feature")),
        "the delivery was lost: {bodies:?}"
    );
    let feature: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|v| v["ref"] == "refs/heads/feature")
        .collect();
    assert_eq!(feature.len(), 1, "{bodies:?}");
    assert_eq!(feature[0]["new"], commit.as_str());
    drop(server);
}

#[tokio::test]
async fn a_slow_client_is_cut_off_while_reading_its_request_head() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&[("NUBO_HTTP_HEADER_TIMEOUT_SECONDS", "1")]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One header byte at a time, never the end of the head (slowloris).
    let started = std::time::Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(15) {
        if tcp.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(300), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(_)) => {
                // An answer (408) is fine too: the server gave up on us.
                closed = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(closed, "the server kept a dribbling client for 15 s");
    // Well-behaved clients are served as before.
    let r = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Opens a push over HTTP that sends its first bytes, then nothing more
/// (or, with `trickle`, one byte every half second).
async fn open_push(
    server: &Server,
    token: &str,
    repo: &str,
    trickle: bool,
) -> tokio::task::JoinHandle<()> {
    use base64::Engine;
    use tokio::io::AsyncWriteExt;
    let addr = server.base.trim_start_matches("http://").to_string();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{token}"));
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/repos/{repo}/git-receive-pack HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 100000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    if trickle {
        // A pkt-line announced as 64 KiB long, sent one byte at a time:
        // git keeps waiting for the rest, never idle for long.
        tcp.write_all(b"fff0").await.unwrap();
    } else {
        let cmd = format!(
            "{} {} refs/heads/stalled\0 report-status\n",
            "0".repeat(40),
            "1".repeat(40)
        );
        tcp.write_all(format!("{:04x}{cmd}", cmd.len() + 4).as_bytes())
            .await
            .unwrap();
    }
    tokio::spawn(async move {
        // Held open for a minute, silent or one byte at a time.
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if trickle && tcp.write_all(b"a").await.is_err() {
                return;
            }
        }
    })
}

fn clone_into(
    server: &Server,
    token: &str,
    repo: &str,
    into: &std::path::Path,
) -> std::process::Output {
    let url = server.url(&format!("/v1/repos/{repo}"));
    git(
        into.parent().unwrap(),
        "alice",
        token,
        &["clone", "-q", &url, into.to_str().unwrap()],
    )
}

#[tokio::test]
async fn a_stalled_push_blocks_no_clone() {
    // Idle pushes are cut off only after two minutes here: the clone must
    // not wait for that (it used to wait for as long as the push was held).
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "busy").await;
    push_files(&server, &token, "busy", &[("f", "1\n")], &[]);
    let tmp = tempfile::tempdir().unwrap();
    let held = open_push(&server, &token, "busy", false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let into = tmp.path().join("clone");
    let (t, i) = (token.clone(), into.clone());
    let base = server.base.clone();
    let cloned = tokio::task::spawn_blocking(move || {
        let url = format!("{base}/v1/repos/busy");
        git(
            i.parent().unwrap(),
            "alice",
            &t,
            &["clone", "-q", &url, i.to_str().unwrap()],
        )
    });
    let out = tokio::time::timeout(Duration::from_secs(20), cloned)
        .await
        .expect("the clone waited for the stalled push")
        .unwrap();
    ok(out);
    assert_eq!(std::fs::read_to_string(into.join("f")).unwrap(), "1\n");
    held.abort();
}

#[tokio::test]
async fn a_stalled_or_dragging_push_lets_go_of_the_lock() {
    let server = Server::start(&[
        ("NUBO_GIT_IDLE_TIMEOUT_SECONDS", "2"),
        ("NUBO_REPO_LOCK_MAX_SECONDS", "4"),
    ]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "busy").await;
    push_files(&server, &token, "busy", &[("f", "1\n")], &[]);
    let tmp = tempfile::tempdir().unwrap();
    let into = tmp.path().join("clone");
    ok(clone_into(&server, &token, "busy", &into));
    // Silent (cut off when idle), then one byte at a time (cut off when it
    // has held the lock too long): either way the next push goes through.
    for trickle in [false, true] {
        let held = open_push(&server, &token, "busy", trickle).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (server_url, token2, dir) = (server.url("/v1/repos/busy"), token.clone(), into.clone());
        let pushed = tokio::task::spawn_blocking(move || {
            std::fs::write(dir.join("g"), format!("{trickle}\n")).unwrap();
            ok(git(&dir, "x", "x", &["add", "."]));
            ok(git(&dir, "x", "x", &["commit", "-qm", "next"]));
            git(
                &dir,
                "alice",
                &token2,
                &["push", "-q", &server_url, "HEAD:refs/heads/main"],
            )
        });
        let out = tokio::time::timeout(Duration::from_secs(40), pushed)
            .await
            .expect("the lock was never let go")
            .unwrap();
        ok(out);
        held.abort();
    }
    assert!(
        server
            .stderr
            .lock()
            .unwrap()
            .contains("held the repository's lock too long"),
        "the dragging push was not stopped by the hold limit"
    );
}
