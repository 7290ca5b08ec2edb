//! Git hosting with the real `git` client over HTTP: clone, push, fetch in
//! protocol v0 and v2, shallow and partial clones, access control, HTTPS
//! and git credentials (hostile input and racing pushes are in
//! git_pushes.rs).

mod common;

use std::process::Command;

use common::{client, create_repo, git, ok, Server, METRICS_TOKEN};
use serde_json::{json, Value};

#[tokio::test]
async fn push_then_clone_with_protocol_v0_and_v2() {
    let server = Server::start(&[("NUBO_METRICS_TOKEN", METRICS_TOKEN)]);
    let token = server.user_with_token("alice", false);
    let repo = create_repo(&server, &token, "my-app").await;
    let url = repo["clone_url_http"].as_str().unwrap().to_string();
    assert_eq!(url, server.url("/v1/repos/my-app"));

    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "alice", &token, &["clone", "-q", &url, "work"]));
    let work = w.join("work");
    std::fs::write(work.join("README.md"), "# my app\n").unwrap();
    ok(git(&work, "alice", &token, &["add", "."]));
    ok(git(&work, "alice", &token, &["commit", "-qm", "first"]));
    for i in 0..3 {
        std::fs::write(work.join("n.txt"), format!("{i}\n")).unwrap();
        ok(git(
            &work,
            "alice",
            &token,
            &["commit", "-qam", &format!("change {i}"), "--allow-empty"],
        ));
    }
    std::fs::write(work.join("n.txt"), "x\n").unwrap();
    ok(git(&work, "alice", &token, &["add", "n.txt"]));
    ok(git(&work, "alice", &token, &["commit", "-qm", "n"]));
    ok(git(
        &work,
        "alice",
        &token,
        &["push", "-q", "origin", "main"],
    ));
    ok(git(&work, "alice", &token, &["tag", "v1"]));
    ok(git(
        &work,
        "alice",
        &token,
        &["push", "-q", "origin", "v1", "main:feature"],
    ));
    let head = ok(git(&work, "alice", &token, &["rev-parse", "HEAD"]));

    for version in ["0", "2"] {
        let dir = format!("clone-v{version}");
        ok(git(
            w,
            "alice",
            &token,
            &[
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "-q",
                &url,
                &dir,
            ],
        ));
        let got = ok(git(&w.join(&dir), "alice", &token, &["rev-parse", "HEAD"]));
        assert_eq!(got, head, "protocol v{version}");
        assert_eq!(
            std::fs::read_to_string(w.join(&dir).join("README.md")).unwrap(),
            "# my app\n"
        );
        ok(git(
            &w.join(&dir),
            "alice",
            &token,
            &["fsck", "--no-progress"],
        ));
        let tags = ok(git(&w.join(&dir), "alice", &token, &["tag"]));
        assert_eq!(tags.trim(), "v1");
    }

    // Shallow and partial clones.
    ok(git(
        w,
        "alice",
        &token,
        &["clone", "-q", "--depth", "1", &url, "shallow"],
    ));
    let count = ok(git(
        &w.join("shallow"),
        "alice",
        &token,
        &["rev-list", "--count", "HEAD"],
    ));
    assert_eq!(count.trim(), "1");
    ok(git(
        w,
        "alice",
        &token,
        &["clone", "-q", "--filter=blob:none", &url, "partial"],
    ));
    let filter = ok(git(
        &w.join("partial"),
        "alice",
        &token,
        &["config", "remote.origin.partialclonefilter"],
    ));
    assert_eq!(filter.trim(), "blob:none");
    assert_eq!(
        std::fs::read_to_string(w.join("partial").join("n.txt")).unwrap(),
        "x\n"
    );

    // Deleting a branch.
    ok(git(
        &work,
        "alice",
        &token,
        &["push", "-q", "origin", ":feature"],
    ));
    let refs = ok(git(&work, "alice", &token, &["ls-remote", "origin"]));
    assert!(
        !refs.contains("refs/heads/feature") && refs.contains("refs/heads/main"),
        "{refs}"
    );

    // Every ref update was recorded, newest first, and published.
    let pushes: Value = client()
        .get(server.url("/api/v1/repos/my-app/pushes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let zero = "0".repeat(40);
    let updates: Vec<(String, bool, bool)> = pushes
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            assert_eq!(u["pusher"], "alice");
            (
                u["ref"].as_str().unwrap().to_string(),
                u["old"] == zero.as_str(),
                u["new"] == zero.as_str(),
            )
        })
        .collect();
    assert_eq!(
        updates,
        [
            ("refs/heads/feature".to_string(), false, true),
            ("refs/heads/feature".to_string(), true, false),
            ("refs/tags/v1".to_string(), true, false),
            ("refs/heads/main".to_string(), true, false),
        ]
    );
    let mut counted = String::new();
    for _ in 0..50 {
        counted = client()
            .get(server.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if counted.contains("nubo_git_ref_updates_total 4") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        counted.contains("nubo_git_ref_updates_total 4"),
        "{counted}"
    );
}

#[tokio::test]
async fn strangers_and_wrong_tokens_are_refused() {
    let server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    let bob = server.user_with_token("bob", false);
    let admin = server.user_with_token("root2", true);
    create_repo(&server, &alice, "private").await;
    let url = server.url("/v1/repos/private");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();

    let out = git(w, "alice", "nubo_wrong", &["ls-remote", &url]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A valid token under another user's name does not count.
    let out = git(w, "alice", &bob, &["ls-remote", &url]);
    assert!(!out.status.success());
    // Bob's own token: no policy lets him in, and git tells him why.
    let out = git(w, "bob", &bob, &["ls-remote", &url]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("remote: bob is not allowed to perform codecommit:GitPull on private"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = client()
        .get(server.url("/api/v1/repos/private"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .get(server.url("/api/v1/repos/no-such-repo"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let listed: Value = client()
        .get(server.url("/api/v1/repos"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
    // Admins reach every repository.
    ok(git(w, "root2", &admin, &["ls-remote", &url]));

    // Dumb HTTP is not served.
    let r = client()
        .get(server.url("/v1/repos/private/info/refs"))
        .basic_auth("alice", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn deleting_a_repository_removes_it() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "doomed").await;
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "alice", &token, &["init", "-q", "work"]));
    std::fs::write(w.join("work").join("f"), "x\n").unwrap();
    ok(git(&w.join("work"), "alice", &token, &["add", "."]));
    ok(git(
        &w.join("work"),
        "alice",
        &token,
        &["commit", "-qm", "x"],
    ));
    ok(git(
        &w.join("work"),
        "alice",
        &token,
        &["push", "-q", &server.url("/v1/repos/doomed"), "main"],
    ));
    let stored = server.data_dir.join("store").join("repos");
    assert_eq!(std::fs::read_dir(&stored).unwrap().count(), 1);
    let r = client()
        .delete(server.url("/api/v1/repos/doomed"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        std::fs::read_dir(&stored).unwrap().count(),
        0,
        "stored objects are gone"
    );
    let out = git(
        tmp.path(),
        "alice",
        &token,
        &["ls-remote", &server.url("/v1/repos/doomed")],
    );
    assert!(!out.status.success());
    // The CLI sees the same store.
    let out = server.cli(&["repo", "create", "from-cli", "--owner", "alice"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.cli(&["repo", "list", "--json"], None);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "from-cli");
    assert_eq!(listed[0]["owner"], "alice");
}

#[tokio::test]
async fn https_with_the_generated_certificate() {
    let mut server = Server::start(&[("NUBO_HTTPS", "127.0.0.1:0")]);
    let https = server
        .https_base
        .clone()
        .expect("the server listens on HTTPS");
    let ca = server.data_dir.join("tls").join("cert.pem");
    assert!(ca.exists(), "a self-signed certificate was generated");
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "secure").await;
    let url = format!("{https}/v1/repos/secure");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();

    // Without trusting the certificate, git refuses to talk.
    let out = git(w, "alice", &token, &["ls-remote", &url]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ca_opt = format!("http.sslCAInfo={}", ca.display());
    ok(git(w, "alice", &token, &["init", "-q", "work"]));
    std::fs::write(w.join("work").join("a.txt"), "over tls\n").unwrap();
    ok(git(&w.join("work"), "alice", &token, &["add", "."]));
    ok(git(
        &w.join("work"),
        "alice",
        &token,
        &["commit", "-qm", "tls"],
    ));
    ok(git(
        &w.join("work"),
        "alice",
        &token,
        &["-c", &ca_opt, "push", "-q", &url, "main"],
    ));
    ok(git(
        w,
        "alice",
        &token,
        &["-c", &ca_opt, "clone", "-q", &url, "back"],
    ));
    assert_eq!(
        std::fs::read_to_string(w.join("back").join("a.txt")).unwrap(),
        "over tls\n"
    );

    // Cookies set over HTTPS are Secure.
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(&ca)
        .arg(format!("{https}/login"))
        .output()
        .expect("curl is installed by scripts/setup.sh");
    let headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
    let cookie = headers
        .lines()
        .find(|l| l.starts_with("set-cookie: nubo_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("secure") && cookie.contains("httponly"),
        "{cookie}"
    );

    // The certificate is kept across restarts.
    let before = std::fs::read(&ca).unwrap();
    let dir = server.data_dir.clone();
    server.kill();
    let again = Server::start_in(&dir, &[("NUBO_HTTPS", "127.0.0.1:0")], &[]);
    assert!(again.https_base.is_some());
    assert_eq!(std::fs::read(&ca).unwrap(), before);
}

#[tokio::test]
async fn generated_and_temporary_git_credentials() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "one").await;
    create_repo(&server, &token, "two").await;
    let (one, two) = (server.url("/v1/repos/one"), server.url("/v1/repos/two"));
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "work"]));
    let work = w.join("work");
    std::fs::write(work.join("f"), "1\n").unwrap();
    ok(git(&work, "x", "x", &["add", "."]));
    ok(git(&work, "x", "x", &["commit", "-qm", "one"]));
    ok(git(&work, "alice", &token, &["push", "-q", &one, "main"]));
    let http = client();

    // A generated credential, through the API.
    let made: Value = http
        .post(server.url("/api/v1/me/git-credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (user, pass) = (
        made["username"].as_str().unwrap(),
        made["password"].as_str().unwrap(),
    );
    assert!(user.starts_with("alice-at-"), "{user}");
    ok(git(w, user, pass, &["clone", "-q", &one, "c1"]));
    ok(git(&work, user, pass, &["push", "-q", &two, "main"]));
    let listed: Value = http
        .get(server.url("/api/v1/me/git-credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["username"], user);
    assert!(listed[0].get("password").is_none());
    let id = made["id"].as_str().unwrap();
    let r = http
        .delete(server.url(&format!("/api/v1/me/git-credentials/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        !git(w, user, pass, &["ls-remote", &one]).status.success(),
        "revoked"
    );

    // Through the CLI: user name and password on two lines.
    let out = server.cli(&["user", "git-credentials", "alice"], None);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    ok(git(w, lines[0], lines[1], &["ls-remote", &one]));

    // Temporary, read-only, for one repository, expiring.
    let temp = |body: Value| {
        http.post(server.url("/api/v1/me/temporary-credentials"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    for bad in [
        json!({"access": "read", "ttl_seconds": 43201}),
        json!({"access": "admin"}),
        json!({"access": "read", "repos": ["../x"]}),
        json!({"access": "read", "repos": []}),
    ] {
        assert_eq!(temp(bad.clone()).await.unwrap().status(), 422, "{bad}");
    }
    let r = temp(json!({"repos": ["one"], "access": "read", "ttl_seconds": 3}))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let t: Value = r.json().await.unwrap();
    let (tu, tp) = (
        t["username"].as_str().unwrap(),
        t["password"].as_str().unwrap(),
    );
    assert!(t["expires_at"].is_string());
    ok(git(w, tu, tp, &["clone", "-q", &one, "c2"]));
    let out = git(&work, tu, tp, &["push", &one, "main:other"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !git(w, tu, tp, &["ls-remote", &two]).status.success(),
        "other repository"
    );
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let out = git(w, tu, tp, &["ls-remote", &one]);
    assert!(!out.status.success(), "expired credential still works");
}
