//! Polling an external repository: a mirror fetched from a real `git
//! daemon` pushes what is new into the repository, which starts its
//! pipeline as a push does; URLs that would leak credentials or reach a
//! refused address are turned away.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// `git daemon` serving `dir` on a free loopback port; killed on drop.
struct Daemon(Child, u16);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn daemon(dir: &std::path::Path) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // git-daemon itself (`git daemon` would leave it running when killed).
    let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = String::from_utf8_lossy(&exec_path.stdout)
        .trim()
        .to_string();
    let child = Command::new(format!("{exec_path}/git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", dir.display()))
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon(child, port)
}

fn sh(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Up Stream")
        .env("GIT_AUTHOR_EMAIL", "up@example.org")
        .env("GIT_COMMITTER_NAME", "Up Stream")
        .env("GIT_COMMITTER_EMAIL", "up@example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Commits a file upstream; answers the commit.
fn commit(work: &std::path::Path, file: &str, text: &str) -> String {
    std::fs::write(work.join(file), text).unwrap();
    sh(work, &["add", "."]);
    sh(work, &["commit", "-qm", file]);
    sh(work, &["push", "-q", "origin", "HEAD:main"]);
    sh(work, &["rev-parse", "HEAD"])
}

async fn executions(server: &Server, token: &str) -> Vec<Value> {
    let (_, list) = api(
        server,
        token,
        Method::GET,
        "/pipelines/web/executions",
        None,
    )
    .await;
    list.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_mirror_polls_upstream_and_its_updates_start_the_pipeline() {
    let server = Server::start(&[("NUBO_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")]);
    let alice = setup(&server).await;
    let (s, b) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let up = tempfile::tempdir().unwrap();
    let bare = up.path().join("upstream.git");
    std::fs::create_dir(&bare).unwrap();
    sh(&bare, &["init", "-q", "--bare", "-b", "main"]);
    let work = up.path().join("work");
    sh(up.path(), &["clone", "-q", bare.to_str().unwrap(), "work"]);
    let first = commit(&work, "README.md", "# upstream\n");
    let d = daemon(up.path());
    let url = format!("git://127.0.0.1:{}/upstream.git", d.1);

    for (bad, field) in [
        (
            json!({"url": "https://user:secret@example.org/x.git"}),
            "credentials",
        ),
        (json!({"url": "file:///etc"}), "git://"),
        (json!({"url": "git://10.1.2.3/x.git"}), "refused"),
        (json!({"url": url, "interval_seconds": 1}), "interval"),
    ] {
        let (s, b) = api(
            &server,
            &alice,
            Method::PUT,
            "/repos/web/mirror",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(s, 422, "{bad}: {b}");
        let m = b["error"]["message"].as_str().unwrap();
        assert!(m.contains(field), "{m}");
        assert!(!m.contains("secret"), "no secret in the error: {m}");
    }
    let (s, m) = api(
        &server,
        &alice,
        Method::PUT,
        "/repos/web/mirror",
        Some(json!({"url": url, "interval_seconds": 3600})),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["pusher"], "alice");

    // The first poll (at once) brings upstream's commit, as alice's push.
    let mut list = Vec::new();
    for _ in 0..150 {
        list = executions(&server, &alice).await;
        if !list.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(list.len(), 1, "the first poll started it");
    assert_eq!(list[0]["source_revision"]["commit"], first.as_str());
    assert_eq!(list[0]["trigger"]["type"], "push");
    assert_eq!(list[0]["trigger"]["by"], "alice");

    // Nothing new: nothing starts. A new commit upstream: the next poll.
    let (_, r) = api(
        &server,
        &alice,
        Method::POST,
        "/repos/web/mirror/poll",
        None,
    )
    .await;
    assert_eq!(r["result"], "up to date", "{r}");
    let second = commit(&work, "app.txt", "v2\n");
    let (_, r) = api(
        &server,
        &alice,
        Method::POST,
        "/repos/web/mirror/poll",
        None,
    )
    .await;
    assert_eq!(r["result"], "updated 1 ref", "{r}");
    let mut list = Vec::new();
    for _ in 0..100 {
        list = executions(&server, &alice).await;
        if list.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["source_revision"]["commit"], second.as_str());
    let (_, m) = api(&server, &alice, Method::GET, "/repos/web/mirror", None).await;
    assert_eq!(m["last_result"], "updated 1 ref");
    assert!(m["last_polled_at"].is_string());

    // The Settings tab shows it.
    let (cookie, _) = sign_in(&server, "alice", "password-of-the-test").await;
    let page = client()
        .get(server.url("/repos/web/settings"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("Follows <code>{url}</code>")),
        "{page}"
    );
    assert!(page.contains("updated 1 ref"));

    // Upstream gone: the poll says why, and nothing changes here.
    drop(d);
    let (_, r) = api(
        &server,
        &alice,
        Method::POST,
        "/repos/web/mirror/poll",
        None,
    )
    .await;
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("fetching failed")),
        "{r}"
    );
    let (s, _) = api(&server, &alice, Method::DELETE, "/repos/web/mirror", None).await;
    assert_eq!(s, 204);
    let (s, _) = api(&server, &alice, Method::GET, "/repos/web/mirror", None).await;
    assert_eq!(s, 404);
}
