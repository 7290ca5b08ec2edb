//! Attacks by a local user of the machine (not a Nubo account), and
//! operator mistakes, that must fail or lose nothing: taking over the
//! cache directory of plaintext repositories before the server makes it,
//! and `nubo key rotate` beside a running server.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{api, client, create_repo, git, ok, Server, BIN};
use serde_json::json;

/// Starts `nubo serve` with `cache_dir` and answers (exit code, stderr)
/// when it refuses to start, or None when it started.
fn start_with_cache(data: &std::path::Path, cache: &std::path::Path) -> Option<(i32, String)> {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0"])
        .args(["--preview-http", "127.0.0.1:0"])
        .env_remove("NUBO_CONFIG")
        .env("NUBO_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Some((status.code().unwrap_or(-1), err));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_cache_dir_made_by_someone_else_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // A directory the attacker made, open to everyone, with a planted hook.
    let planted = tmp.path().join("planted");
    std::fs::create_dir_all(planted.join("x.git/hooks")).unwrap();
    std::fs::write(planted.join("x.git/hooks/pre-receive"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // As another user (only root can make this here).
        let c = std::ffi::CString::new(planted.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 1000, 1000) }, 0);
    }
    let (code, err) = start_with_cache(&data, &planted).expect("the server must refuse");
    assert_ne!(code, 0);
    assert!(err.contains("refusing the cache dir"), "{err}");
    if root {
        assert!(err.contains("belongs to uid 1000"), "{err}");
    } else {
        assert!(err.contains("mode is 777"), "{err}");
    }
    assert!(
        planted.join("x.git/hooks/pre-receive").exists(),
        "nothing of it is used or touched"
    );

    // A link to a directory elsewhere is refused too.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let (_, err) = start_with_cache(&data, &link).expect("the server must refuse");
    assert!(err.contains("symbolic link"), "{err}");

    // A fresh path is made 0700 and used.
    let fresh = tmp.path().join("fresh");
    let mut server = Server::start_in(&data, &[("NUBO_CACHE_DIR", fresh.to_str().unwrap())], &[]);
    let mode = std::fs::symlink_metadata(&fresh)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    server.kill();
}

/// Creates repository `name`, pushes one commit to it, stores a parameter
/// and adds a webhook: everything the master key seals or wraps.
async fn sealed_things(server: &Server, token: &str, name: &str, work: &std::path::Path) {
    create_repo(server, token, name).await;
    let dir = work.join(name);
    ok(git(work, "x", "x", &["init", "-q", name]));
    std::fs::write(dir.join("f"), format!("{name}\n")).unwrap();
    ok(git(&dir, "x", "x", &["add", "."]));
    ok(git(&dir, "x", "x", &["commit", "-qm", name]));
    let url = server.url(&format!("/v1/repos/{name}"));
    ok(git(&dir, "root", token, &["push", "-q", &url, "HEAD:main"]));
    let (s, b) = api(
        server,
        token,
        reqwest::Method::PUT,
        &format!("/parameters/{name}"),
        Some(json!({"value": format!("value-of-{name}")})),
    )
    .await;
    assert_eq!(s, 204, "{b}");
    let r = client()
        .post(server.url(&format!("/api/v1/repos/{name}/webhooks")))
        .bearer_auth(token)
        .json(&json!({"url": "https://hooks.example.org/nubo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

fn rotate(server: &Server) {
    let out = server.cli(&["key", "rotate"], None);
    assert!(
        out.status.success(),
        "key rotate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn key_rotation_beside_a_running_server_loses_nothing() {
    let mut server = Server::start(&[]);
    let token = server.user_with_token("root", true);
    let tmp = tempfile::tempdir().unwrap();
    sealed_things(&server, &token, "before", tmp.path()).await;
    rotate(&server);
    // The server now seals with the new key: what it makes after the
    // rotation opens with the key on disk, through the next rotations too.
    sealed_things(&server, &token, "after", tmp.path()).await;
    let data = server.data_dir.clone();
    let rotations = std::thread::spawn(move || {
        for _ in 0..3 {
            let out = common::cli(&data, &["key", "rotate"], None);
            assert!(
                out.status.success(),
                "key rotate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    for i in 0..6 {
        sealed_things(&server, &token, &format!("during-{i}"), tmp.path()).await;
    }
    rotations.join().unwrap();
    rotate(&server);

    // After a restart everything opens with the key file alone.
    server.kill();
    let data = server.data_dir.clone();
    let server = Server::start_in(&data, &[], &[]);
    let mut names = vec!["before".to_string(), "after".to_string()];
    names.extend((0..6).map(|i| format!("during-{i}")));
    for name in &names {
        let url = server.url(&format!("/v1/repos/{name}"));
        let into = tmp.path().join(format!("clone-{name}"));
        ok(git(
            tmp.path(),
            "root",
            &token,
            &["clone", "-q", &url, into.to_str().unwrap()],
        ));
        assert_eq!(
            std::fs::read_to_string(into.join("f")).unwrap(),
            format!("{name}\n")
        );
    }
    // A rotation opens every sealed value: it fails on one it cannot open.
    rotate(&server);
}
