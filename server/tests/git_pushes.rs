//! Pushes that must change nothing or only what they should: hostile
//! names, truncated packs, pushes over the size limit, two pushes racing
//! for one branch.

mod common;

use common::{client, create_repo, git, ok, Server};
use serde_json::{json, Value};

#[tokio::test]
async fn hostile_names_and_truncated_packs_change_nothing() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let http = client();
    for bad in ["../x", "a/b", "a\u{1}b", "x.git", "", &"y".repeat(101)] {
        let r = http
            .post(server.url("/api/v1/repos"))
            .bearer_auth(&token)
            .json(&json!({"name": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "name {bad:?}");
    }
    create_repo(&server, &token, "target").await;
    let r = http
        .post(server.url("/api/v1/repos"))
        .bearer_auth(&token)
        .json(&json!({"name": "TARGET"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let out = server.cli(&["repo", "list", "--json"], None);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only one repository exists"
    );

    // A push whose pack is cut short: git refuses it and no ref moves.
    let zero = "0".repeat(40);
    let new = "1".repeat(40);
    let command = format!("{zero} {new} refs/heads/main\0report-status\n");
    let mut body = format!("{:04x}{command}0000", command.len() + 4).into_bytes();
    body.extend_from_slice(b"PACK\0\0\0\x02\0\0\0\x05\x95");
    let r = http
        .post(server.url("/v1/repos/target/git-receive-pack"))
        .basic_auth("alice", Some(&token))
        .header("content-type", "application/x-git-receive-pack-request")
        .body(body)
        .send()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
    assert!(!text.contains("ok refs/heads/main"), "{text}");
    let tmp = tempfile::tempdir().unwrap();
    let refs = ok(git(
        tmp.path(),
        "alice",
        &token,
        &["ls-remote", &server.url("/v1/repos/target")],
    ));
    assert_eq!(refs.trim(), "", "no ref was created");
    assert!(
        !server.data_dir.join("store").exists(),
        "nothing reached the durable store"
    );
    let pushes: Value = http
        .get(server.url("/api/v1/repos/target/pushes"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pushes, json!([]), "a refused push records no event");

    // Malformed pkt-lines to either service: git stops, the server stays up,
    // nothing is written.
    for (service, body) in [
        ("git-upload-pack", &b"zzzz-not-a-pkt-line"[..]),
        ("git-receive-pack", &b"0004\xff\xff\xff"[..]),
        ("git-receive-pack", &b"ffff"[..]),
    ] {
        let r = http
            .post(server.url(&format!("/v1/repos/target/{service}")))
            .basic_auth("alice", Some(&token))
            .header("content-type", format!("application/x-{service}-request"))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
        assert!(!text.contains(" ok refs/"), "{text}");
    }
    let refs = ok(git(
        tmp.path(),
        "alice",
        &token,
        &["ls-remote", &server.url("/v1/repos/target")],
    ));
    assert_eq!(refs.trim(), "", "still no ref");
    assert!(
        !server.data_dir.join("store").exists(),
        "still nothing stored"
    );
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A wrong content type is refused before git runs.
    let r = http
        .post(server.url("/v1/repos/target/git-receive-pack"))
        .basic_auth("alice", Some(&token))
        .body("0000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

/// Pseudo-random bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn pushes_over_the_size_limit_are_refused() {
    let server = Server::start(&[("NUBO_MAX_PUSH_BYTES", "65536")]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "small").await;
    let url = server.url("/v1/repos/small");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    for (dir, size, buffer) in [("a", 200_000, "1048576"), ("b", 3_000_000, "1048576")] {
        // "a" is sent with a Content-Length, "b" in chunks (over http.postBuffer).
        ok(git(w, "alice", &token, &["init", "-q", dir]));
        let work = w.join(dir);
        std::fs::write(work.join("big.bin"), noise(size, size as u64)).unwrap();
        ok(git(&work, "alice", &token, &["add", "."]));
        ok(git(&work, "alice", &token, &["commit", "-qm", "big"]));
        let out = git(
            &work,
            "alice",
            &token,
            &[
                "-c",
                &format!("http.postBuffer={buffer}"),
                "push",
                &url,
                "main",
            ],
        );
        assert!(!out.status.success(), "a {size}-byte push was accepted");
    }
    let refs = ok(git(w, "alice", &token, &["ls-remote", &url]));
    assert_eq!(refs.trim(), "", "no ref was created");
    // A small push still works.
    ok(git(w, "alice", &token, &["init", "-q", "c"]));
    std::fs::write(w.join("c").join("a.txt"), "small\n").unwrap();
    ok(git(&w.join("c"), "alice", &token, &["add", "."]));
    ok(git(
        &w.join("c"),
        "alice",
        &token,
        &["commit", "-qm", "small"],
    ));
    ok(git(
        &w.join("c"),
        "alice",
        &token,
        &["push", "-q", &url, "main"],
    ));
}

#[tokio::test]
async fn concurrent_pushes_to_one_branch_have_one_winner() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "race").await;
    let url = server.url("/v1/repos/race");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().to_path_buf();
    ok(git(&w, "alice", &token, &["init", "-q", "seed"]));
    std::fs::write(w.join("seed").join("f"), "0\n").unwrap();
    ok(git(&w.join("seed"), "alice", &token, &["add", "."]));
    ok(git(
        &w.join("seed"),
        "alice",
        &token,
        &["commit", "-qm", "seed"],
    ));
    ok(git(
        &w.join("seed"),
        "alice",
        &token,
        &["push", "-q", &url, "main"],
    ));
    let mut clones = Vec::new();
    for i in 0..4 {
        let dir = format!("c{i}");
        ok(git(&w, "alice", &token, &["clone", "-q", &url, &dir]));
        std::fs::write(w.join(&dir).join("f"), format!("writer {i}\n")).unwrap();
        ok(git(
            &w.join(&dir),
            "alice",
            &token,
            &["commit", "-qam", &format!("writer {i}")],
        ));
        clones.push(w.join(dir));
    }
    let handles: Vec<_> = clones
        .into_iter()
        .map(|dir| {
            let (token, url) = (token.clone(), url.clone());
            std::thread::spawn(move || {
                git(&dir, "alice", &token, &["push", "-q", &url, "main"])
                    .status
                    .success()
            })
        })
        .collect();
    let winners = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(winners, 1, "exactly one of the racing pushes wins");
    ok(git(&w, "alice", &token, &["clone", "-q", &url, "check"]));
    ok(git(
        &w.join("check"),
        "alice",
        &token,
        &["fsck", "--no-progress", "--strict"],
    ));
    let log = ok(git(
        &w.join("check"),
        "alice",
        &token,
        &["log", "--format=%s"],
    ));
    assert_eq!(log.lines().count(), 2, "{log}");
}
