//! The `nubo` command line against a data dir, with and without a running
//! server, and crash safety of user creation.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{cli, client, Server, BIN};
use serde_json::{json, Value};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_command_has_help_with_examples() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["user"],
        &["token"],
        &["repo"],
        &["repo", "create"],
        &["repo", "list"],
        &["repo", "delete"],
        &["user", "create"],
        &["user", "list"],
        &["user", "disable"],
        &["user", "enable"],
        &["user", "set-password"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
    ];
    for args in commands {
        let out = std::process::Command::new(BIN)
            .args(*args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = stdout(&out);
        assert!(
            text.contains("Example"),
            "`nubo {} --help` has no examples",
            args.join(" ")
        );
        assert!(
            text.contains("--data-dir"),
            "`nubo {} --help` lacks --data-dir",
            args.join(" ")
        );
    }
}

#[test]
fn users_and_tokens_without_a_server() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");

    let out = cli(
        &dir,
        &["user", "create", "alice", "--password-stdin"],
        Some("alices-password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(
        &dir,
        &["user", "create", "Alice", "--password-stdin"],
        Some("another-password\n"),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = cli(&dir, &["user", "create", "bob"], Some("x"));
    assert!(!out.status.success(), "a password must come from stdin");
    let out = cli(
        &dir,
        &["user", "create", "bob", "--password-stdin"],
        Some(""),
    );
    assert!(
        stderr(&out).contains("no password on standard input"),
        "{}",
        stderr(&out)
    );
    let out = cli(
        &dir,
        &["user", "create", "bob", "--password-stdin"],
        Some("short\n"),
    );
    assert!(stderr(&out).contains("too short"), "{}", stderr(&out));
    let out = cli(
        &dir,
        &["user", "create", "../etc/passwd", "--password-stdin"],
        Some("long-enough\n"),
    );
    assert!(stderr(&out).contains("not allowed"), "{}", stderr(&out));

    let out = cli(
        &dir,
        &["token", "create", "alice", "--description", "ci"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);
    assert_eq!(
        token.lines().count(),
        1,
        "only the token is printed: {token:?}"
    );
    assert!(token.starts_with("nubo_"));

    let out = cli(&dir, &["token", "create", "nobody"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no user named \"nobody\""),
        "{}",
        stderr(&out)
    );

    let out = cli(&dir, &["user", "list", "--json"], None);
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "no first-start admin without serve"
    );

    let out = cli(&dir, &["token", "list", "alice"], None);
    let listing = stdout(&out);
    assert!(
        listing.contains("ci") && !listing.contains(token.trim()),
        "{listing}"
    );
    let id = listing
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = cli(&dir, &["token", "revoke", &id], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&cli(&dir, &["token", "list", "alice"], None))
            .lines()
            .count(),
        1
    );
}

#[test]
fn config_file_env_and_flags_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let from_file = tmp.path().join("from-file");
    let from_flag = tmp.path().join("from-flag");
    let config = tmp.path().join("nubo.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", from_file.to_str().unwrap()),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(extra)
            .args(["user", "create", "u1", "--password-stdin"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    run(&[]);
    assert!(from_file.join("nubo.db").exists());
    run(&["--data-dir", from_flag.to_str().unwrap()]);
    assert!(from_flag.join("nubo.db").exists());

    std::fs::write(&config, "data_dir = 5\n").unwrap();
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nubo.toml"), "{}", stderr(&out));
}

#[tokio::test]
async fn cli_works_while_the_server_runs() {
    let server = Server::start(&[]);
    let token = server.user_with_token("gina", false);
    let me: Value = client()
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "gina");
}

/// Creates users over HTTP as fast as possible, SIGKILLs the server midway,
/// restarts it: every user whose creation was acknowledged exists and can
/// sign in, and every user that exists is whole.
#[tokio::test]
async fn sigkill_during_user_creation_loses_no_acknowledged_user() {
    let mut server = Server::start(&[]);
    let admin = server.user_with_token("root2", true);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..4 {
        let url = server.url("/api/v1/users");
        let admin = admin.clone();
        let acknowledged = acknowledged.clone();
        workers.push(tokio::spawn(async move {
            let http = client();
            for i in 0.. {
                let name = format!("u{w}-{i}");
                let r = http
                    .post(&url)
                    .bearer_auth(&admin)
                    .json(&json!({"name": name, "password": "password-of-the-test"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => acknowledged.lock().unwrap().push(name),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    for w in workers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        !acknowledged.is_empty(),
        "no user was created before the kill"
    );

    let dir = server.data_dir.clone();
    let restarted = Server::start_in(&dir, &[], &[]);
    let out = restarted.cli(&["user", "list", "--json"], None);
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    for name in &acknowledged {
        assert!(names.contains(name), "acknowledged user {name} was lost");
    }
    // Every stored user is whole: it can get a token and authenticate.
    let http = client();
    for name in names.iter().filter(|n| n.starts_with('u')) {
        let out = restarted.cli(&["token", "create", name], None);
        assert!(out.status.success(), "{}", stderr(&out));
        let token = stdout(&out).trim().to_string();
        let r = http
            .get(restarted.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "user {name} is not whole");
    }
    let check = std::process::Command::new("sqlite3")
        .arg(dir.join("nubo.db"))
        .arg("PRAGMA integrity_check;")
        .output();
    if let Ok(check) = check {
        assert_eq!(stdout(&check).trim(), "ok");
    }
}
