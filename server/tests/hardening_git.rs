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
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(refs(&server, &token, "app", w), before, "{args:?}");
    }

    // What the server stored is what git holds, also after a restart.
    server.kill();
    let data = server.data_dir.clone();
    let server = Server::start_in(&data, &[], &[]);
    assert_eq!(refs(&server, &token, "app", w), before);
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
