//! Git over SSH with the real OpenSSH client: keys, clone and push in
//! protocol v0 and v2, a push that starts a pipeline, and everything that
//! is not git refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{api, client, create_repo, declaration, git, ok, setup, Server};
use serde_json::{json, Value};

fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .args(args)
        .output()
        .expect("ssh-keygen is installed by scripts/setup.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn ssh_options(key: &Path, port: u16) -> Vec<String> {
    vec![
        "-i".into(),
        key.display().to_string(),
        "-p".into(),
        port.to_string(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=no".into(),
        "-o".into(),
        "UserKnownHostsFile=/dev/null".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
        "-o".into(),
        "BatchMode=yes".into(),
    ]
}

/// git with `GIT_SSH_COMMAND` using `key`.
fn git_ssh(cwd: &Path, key: &Path, args: &[&str]) -> Output {
    let command = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes",
        key.display()
    );
    Command::new("git")
        .current_dir(cwd)
        .env("HOME", cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_SSH_COMMAND", command)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .args(args)
        .output()
        .unwrap()
}

fn ssh(key: &Path, port: u16, extra: &[&str]) -> Output {
    Command::new("ssh")
        .args(ssh_options(key, port))
        .args(extra)
        .output()
        .unwrap()
}

async fn add_key(server: &Server, token: &str, key: &Path) -> reqwest::Response {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    client()
        .post(server.url("/api/v1/me/ssh-keys"))
        .bearer_auth(token)
        .json(&json!({ "public_key": public }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn clone_and_push_over_ssh_in_v0_and_v2() {
    let server = Server::start(&[]);
    let port = server.ssh_addr.expect("ssh listener").port();
    let token = server.user_with_token("alice", false);
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let key = keygen(w, "alice_ed25519", &["-t", "ed25519"]);
    let r = add_key(&server, &token, &key).await;
    assert_eq!(r.status(), 201);
    let added: Value = r.json().await.unwrap();
    assert!(added["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("SHA256:"));
    // The same key twice is a conflict.
    assert_eq!(add_key(&server, &token, &key).await.status(), 409);

    let repo = create_repo(&server, &token, "over-ssh").await;
    let url = repo["clone_url_ssh"].as_str().unwrap().to_string();
    assert_eq!(url, format!("ssh://git@127.0.0.1:{port}/v1/repos/over-ssh"));

    ok(git_ssh(w, &key, &["clone", "-q", &url, "work"]));
    let work = w.join("work");
    std::fs::write(work.join("a.txt"), "over ssh\n").unwrap();
    ok(git_ssh(&work, &key, &["add", "."]));
    ok(git_ssh(&work, &key, &["commit", "-qm", "ssh"]));
    ok(git_ssh(&work, &key, &["push", "-q", "origin", "HEAD:main"]));
    let head = ok(git_ssh(&work, &key, &["rev-parse", "HEAD"]));
    for version in ["0", "2"] {
        let dir = format!("v{version}");
        ok(git_ssh(
            w,
            &key,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "-q",
                &url,
                &dir,
            ],
        ));
        assert_eq!(
            ok(git_ssh(&w.join(&dir), &key, &["rev-parse", "HEAD"])),
            head
        );
    }
    // The same repository over HTTP sees the SSH push.
    let refs = ok(git(
        w,
        "alice",
        &token,
        &["ls-remote", &server.url("/v1/repos/over-ssh")],
    ));
    assert!(refs.contains(head.trim()));
    // The push was recorded.
    let pushes: Value = client()
        .get(server.url("/api/v1/repos/over-ssh/pushes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pushes[0]["ref"], "refs/heads/main");
    assert_eq!(pushes[0]["pusher"], "alice");
}

#[tokio::test]
async fn wrong_keys_weak_keys_and_strangers_are_refused() {
    let server = Server::start(&[]);
    let port = server.ssh_addr.unwrap().port();
    let alice = server.user_with_token("alice", false);
    let bob = server.user_with_token("bob", false);
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let alice_key = keygen(w, "alice", &["-t", "ed25519"]);
    let bob_key = keygen(w, "bob", &["-t", "ecdsa"]);
    let unknown = keygen(w, "unknown", &["-t", "ed25519"]);
    let weak = keygen(w, "weak", &["-t", "rsa", "-b", "1024"]);
    assert_eq!(add_key(&server, &alice, &alice_key).await.status(), 201);
    assert_eq!(add_key(&server, &bob, &bob_key).await.status(), 201);
    let r = add_key(&server, &alice, &weak).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("2048"));
    let r = client()
        .post(server.url("/api/v1/me/ssh-keys"))
        .bearer_auth(&alice)
        .json(&json!({"public_key": "ssh-ed25519 not-base64 x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    create_repo(&server, &alice, "private").await;
    let url = format!("ssh://git@127.0.0.1:{port}/v1/repos/private");

    let out = git_ssh(w, &unknown, &["ls-remote", &url]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A registered key, but under another user name than `git`.
    let out = git_ssh(
        w,
        &alice_key,
        &["ls-remote", &url.replace("git@", "alice@")],
    );
    assert!(!out.status.success());
    // Bob is authenticated, but the repository is not his.
    let out = git_ssh(w, &bob_key, &["ls-remote", &url]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not allowed to perform codecommit:GitPull"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(git_ssh(w, &alice_key, &["ls-remote", &url]));

    // A key removed stops working.
    let keys: Value = client()
        .get(server.url("/api/v1/me/ssh-keys"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = keys[0]["id"].as_str().unwrap();
    let r = client()
        .delete(server.url(&format!("/api/v1/me/ssh-keys/{id}")))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let out = git_ssh(w, &bob_key, &["ls-remote", &url]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let _ = port;
}

#[tokio::test]
async fn shells_commands_and_forwarding_are_refused() {
    let server = Server::start(&[]);
    let port = server.ssh_addr.unwrap().port();
    server.user_with_token("alice", false);
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "alice", &["-t", "ed25519"]);
    let out = server.cli(
        &[
            "user",
            "add-ssh-key",
            "alice",
            "--key-file",
            &key.with_extension("pub").display().to_string(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("SHA256:"));
    let marker = tmp.path().join("must-not-exist");

    let out = ssh(&key, port, &["git@127.0.0.1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no shell access"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ssh(&key, port, &["-tt", "git@127.0.0.1"]);
    assert!(!out.status.success());
    for command in [
        format!("touch {}", marker.display()),
        "rm -rf /".to_string(),
        "git-upload-pack '/v1/repos/../../etc'".to_string(),
        format!("git-upload-pack '/v1/repos/x'; touch {}", marker.display()),
    ] {
        let out = ssh(&key, port, &["git@127.0.0.1", &command]);
        assert!(!out.status.success(), "{command}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("was refused"),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!marker.exists());
    // Local and remote port forwarding.
    let out = ssh(
        &key,
        port,
        &[
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "127.0.0.1:0:127.0.0.1:22",
            "git@127.0.0.1",
        ],
    );
    assert!(!out.status.success());
    let out = ssh(&key, port, &["-W", "127.0.0.1:22", "git@127.0.0.1"]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_push_over_ssh_starts_the_repositorys_pipeline() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let (s, b) = api(
        &server,
        &alice,
        reqwest::Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let key = keygen(w, "alice_ed25519", &["-t", "ed25519"]);
    assert_eq!(add_key(&server, &alice, &key).await.status(), 201);
    let port = server.ssh_addr.unwrap().port();
    let url = format!("ssh://git@127.0.0.1:{port}/v1/repos/web");
    ok(git_ssh(w, &key, &["clone", "-q", &url, "work"]));
    let work = w.join("work");
    std::fs::write(work.join("ssh.txt"), "pushed over ssh\n").unwrap();
    ok(git_ssh(&work, &key, &["add", "."]));
    ok(git_ssh(&work, &key, &["commit", "-qm", "over ssh"]));
    ok(git_ssh(&work, &key, &["push", "-q", "origin", "HEAD:main"]));
    let head = ok(git_ssh(&work, &key, &["rev-parse", "HEAD"]));
    let mut list = Value::Null;
    for _ in 0..100 {
        list = api(
            &server,
            &alice,
            reqwest::Method::GET,
            "/pipelines/web/executions",
            None,
        )
        .await
        .1;
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(list[0]["source_revision"]["commit"], head.trim(), "{list}");
    assert_eq!(list[0]["trigger"]["type"], "push");
    assert_eq!(list[0]["trigger"]["by"], "alice");
}
