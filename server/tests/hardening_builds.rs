//! Attacks through builds that must fail: a repository whose buildspec is a
//! link to a host file, a project owner reading stored secrets that are not
//! theirs, a build that hands host files back through its output (links in
//! its artifacts, its log or its outcome) or floods its log, a build that
//! runs as the server's user.

mod common;

use common::*;
use serde_json::json;

/// Creates project `name` for `repo` (owned by the token's user) and runs
/// one build; answers the finished build and its log.
async fn run_build(
    server: &Server,
    token: &str,
    name: &str,
    repo: &str,
) -> (serde_json::Value, String) {
    run_build_with(server, token, json!({"name": name, "repo": repo})).await
}

/// The same for a project described by `project` (name, repo, image…).
async fn run_build_with(
    server: &Server,
    token: &str,
    project: serde_json::Value,
) -> (serde_json::Value, String) {
    let name = project["name"].as_str().unwrap().to_string();
    let (s, p) = api(
        server,
        token,
        reqwest::Method::POST,
        "/projects",
        Some(project),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (s, b) = api(
        server,
        token,
        reqwest::Method::POST,
        &format!("/projects/{name}/builds"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().unwrap().to_string();
    let b = wait_build(server, token, &id).await;
    let log = build_log(server, token, &id).await;
    (b, log)
}

#[tokio::test]
async fn a_buildspec_that_links_to_a_host_file_is_not_read() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "linked").await;
    // A host file the build must never read (in YAML, so that reading it
    // would run it and print it).
    let host = server.data_dir.with_extension("host-secret.yml");
    std::fs::write(
        &host,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo HOST-SECRET-LINE\n",
    )
    .unwrap();
    push_files(
        &server,
        &token,
        "linked",
        &[("README.md", "x\n")],
        &[("buildspec.yml", host.to_str().unwrap())],
    );
    let (b, log) = run_build(&server, &token, "linked-ci", "linked").await;
    assert_eq!(b["status"], "FAILED", "{b}");
    assert!(
        b["reason"].as_str().unwrap().contains("symbolic link"),
        "{b}"
    );
    assert!(!log.contains("HOST-SECRET-LINE"), "{log}");
}

#[tokio::test]
async fn a_build_reads_only_the_stored_values_its_owner_may_read() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root", true);
    let token = server.user_with_token("alice", false);
    for (path, value) in [
        ("/secrets/prod-db", "prod-db-password-123"),
        ("/secrets/ci-deploy", "ci-deploy-key-456"),
        ("/parameters/prod/api", "prod-api-token-789"),
    ] {
        let (s, b) = api(
            &server,
            &admin,
            reqwest::Method::PUT,
            path,
            Some(json!({"value": value})),
        )
        .await;
        assert_eq!(s, 204, "{b}");
    }
    // The attack: print a secret that is not yours, encoded past masking.
    create_repo(&server, &token, "thief").await;
    let spec = "version: 0.2\nenv:\n  secrets-manager:\n    X: prod-db\nphases:\n  build:\n    commands:\n      - echo \"$X\" | rev\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, log) = run_build(&server, &token, "thief-ci", "thief").await;
    assert_eq!(b["status"], "FAILED", "{b}");
    assert!(!log.contains("321-drowssap"), "{log}");
    let denied = b["reason"].as_str().unwrap().to_string();
    assert!(
        denied.contains("does not exist or alice may not read it"),
        "{denied}"
    );
    // A name that does not exist gets the very same answer: no enumeration.
    let spec = "version: 0.2\nenv:\n  secrets-manager:\n    X: prod-db-nope\nphases:\n  build:\n    commands:\n      - echo hi\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, _) = run_build(&server, &token, "thief-ci2", "thief").await;
    assert_eq!(
        b["reason"].as_str().unwrap(),
        denied.replace("prod-db", "prod-db-nope"),
        "{b}"
    );

    // With a policy the owner reads what it names, and nothing else.
    let (s, b) = api(
        &server,
        &admin,
        reqwest::Method::PUT,
        "/users/alice/policies/ci",
        Some(json!({"Statement": [
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": "arn:nubo:secretsmanager:::secret:ci-*"}]})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let spec = "version: 0.2\nenv:\n  secrets-manager:\n    X: ci-deploy\nphases:\n  build:\n    commands:\n      - test \"$X\" = ci-deploy-key-456\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, _) = run_build(&server, &token, "thief-ci3", "thief").await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
    let spec = "version: 0.2\nenv:\n  parameter-store:\n    X: /prod/api\nphases:\n  build:\n    commands:\n      - echo hi\n";
    push_files(&server, &token, "thief", &[("buildspec.yml", spec)], &[]);
    let (b, _) = run_build(&server, &token, "thief-ci4", "thief").await;
    assert_eq!(b["status"], "FAILED", "{b}");

    // Every decision is in the audit log, and the simulator agrees.
    let (_, audit) = api(&server, &admin, reqwest::Method::GET, "/audit", None).await;
    let entries = audit.as_array().unwrap();
    let seen = |action: &str, arn: &str, allowed: bool| {
        entries.iter().any(|e| {
            e["user"] == "alice"
                && e["action"] == action
                && e["repo"] == arn
                && e["allowed"] == allowed
        })
    };
    assert!(
        seen(
            "secretsmanager:GetSecretValue",
            "arn:nubo:secretsmanager:::secret:prod-db",
            false
        ),
        "{audit}"
    );
    assert!(
        seen(
            "secretsmanager:GetSecretValue",
            "arn:nubo:secretsmanager:::secret:ci-deploy",
            true
        ),
        "{audit}"
    );
    assert!(
        seen(
            "ssm:GetParameters",
            "arn:nubo:ssm:::parameter/prod/api",
            false
        ),
        "{audit}"
    );
    for (name, allowed) in [("ci-deploy", true), ("prod-db", false)] {
        let (s, d) = api(
            &server,
            &admin,
            reqwest::Method::POST,
            "/policy-simulator",
            Some(json!({"user": "alice", "action": "secretsmanager:GetSecretValue", "name": name})),
        )
        .await;
        assert_eq!(s, 200, "{d}");
        assert_eq!(d["allowed"], allowed, "{name}: {d}");
    }
}

/// The attacks through a build's output, for a project with `image` (a
/// container build) or without (the local sandbox).
async fn output_attacks(server: &Server, token: &str, image: Option<&str>) {
    let data = server.data_dir.canonicalize().unwrap();
    let key = std::fs::read(data.join("master.key")).unwrap();
    let marker = data.with_extension("marker");
    std::fs::write(&marker, "HOST-FILE-MARKER\n").unwrap();
    let tag = if image.is_some() { "c" } else { "s" };
    let project = |name: &str, repo: &str| {
        let mut p = json!({"name": format!("{name}-{tag}"), "repo": repo});
        if let Some(i) = image {
            p["image"] = json!(i);
        }
        p
    };
    let repo = format!("out-{tag}");
    create_repo(server, token, &repo).await;

    // 1. An artifact that links to the master key, and the artifacts
    //    directory itself a link to the root.
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"src=$CODEBUILD_SRC_DIR\"\n      - mkdir -p out && echo real > out/real.txt && ln -s {key} out/key.bin && ln -s / out/root\nartifacts:\n  files: ['**/*']\n  base-directory: out\n",
        key = data.join("master.key").display()
    );
    push_files(server, token, &repo, &[("buildspec.yml", &spec)], &[]);
    let (b, log) = run_build_with(server, token, project("links", &repo)).await;
    // The build's own commands name host paths (the attacker wrote them);
    // nothing else in the log may.
    let leaked = log
        .lines()
        .filter(|l| !l.contains("Running command"))
        .any(|l| l.contains(&data.display().to_string()));
    assert!(!leaked, "a host path in the log:\n{log}");
    assert!(log.contains("src=/codebuild/src"), "{log}");
    let zip = client()
        .get(server.url(&format!(
            "/api/v1/builds/{}/artifacts.zip",
            b["id"].as_str().unwrap()
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if zip.status() == 200 {
        let bytes = zip.bytes().await.unwrap();
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_slice()),
            "the master key came back in the artifacts"
        );
        assert!(
            bytes.len() < 1 << 20,
            "the zip walked the host: {} bytes",
            bytes.len()
        );
    }

    // 2. The artifacts directory a link to `/`, while the build writes
    //    artifacts through it.
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - ln -s / /codebuild/out/artifacts || true\n      - mkdir -p out && echo real > out/real.txt\nartifacts:\n  files: ['**/*']\n  base-directory: out\n";
    push_files(server, token, &repo, &[("buildspec.yml", spec)], &[]);
    let (b, _) = run_build_with(server, token, project("rootlink", &repo)).await;
    let r = client()
        .get(server.url(&format!(
            "/api/v1/builds/{}/artifacts.zip",
            b["id"].as_str().unwrap()
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if r.status() == 200 {
        assert!(r.bytes().await.unwrap().len() < 1 << 20);
    }

    // 3. The log replaced by a link to a host file, the outcome by a link
    //    to /dev/zero, and an endless line: the server reads none of it.
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - ln -sf {marker} /codebuild/out/build.log\n      - ln -sf /dev/zero /codebuild/out/outcome.json\n",
        marker = marker.display()
    );
    push_files(server, token, &repo, &[("buildspec.yml", &spec)], &[]);
    let (b, log) = run_build_with(server, token, project("logs", &repo)).await;
    assert_eq!(b["status"], "FAILED", "{b}");
    assert!(!log.contains("HOST-FILE-MARKER"), "{log}");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - head -c 30000000 /dev/zero | tr '\\\\0' x >> /codebuild/out/build.log\n";
    push_files(server, token, &repo, &[("buildspec.yml", spec)], &[]);
    let mut p = project("flood", &repo);
    p["name"] = json!(format!("flood-{tag}"));
    let (_, log) = run_build_with(server, token, p).await;
    assert!(log.len() < 12 << 20, "the log kept {} bytes", log.len());
    // The server is still there.
    let r = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_sandboxed_build_hands_back_no_host_file() {
    let server = Server::start(&[("NUBO_BUILD_LOG_CAP_BYTES", "1048576")]);
    let token = server.user_with_token("alice", false);
    output_attacks(&server, &token, None).await;
}

#[tokio::test]
async fn a_container_build_hands_back_no_host_file() {
    let podman = Podman::start();
    let server = Server::start(&[podman.env_ref(), ("NUBO_BUILD_LOG_CAP_BYTES", "1048576")]);
    let token = server.user_with_token("alice", false);
    output_attacks(&server, &token, Some("localhost/nubo-workspace:latest")).await;
}

#[tokio::test]
async fn a_build_runs_neither_as_the_server_nor_with_its_files() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "peek").await;
    let data = server.data_dir.canonicalize().unwrap();
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"uid=$(id -u)\"\n      - cat {data}/master.key | base64 || echo no-key\n      - ls {data} || echo no-data-dir\n      - ps -e | wc -l\n",
        data = data.display()
    );
    push_files(&server, &token, "peek", &[("buildspec.yml", &spec)], &[]);
    let (b, log) = run_build(&server, &token, "peek-ci", "peek").await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}\n{log}");
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(data.join("master.key")).unwrap());
    assert!(!log.contains(&key), "the build read the master key");
    assert!(
        log.contains("no-key") && log.contains("no-data-dir"),
        "{log}"
    );
    assert!(log.contains("uid=1000"), "{log}");
    assert!(log.contains("Running in the local sandbox"), "{log}");

    // Where no sandbox can be set up, only administrators' projects run
    // image-less builds (unconfined), and everyone else is told why.
    let server = Server::start(&[("NUBO_LOCAL_SANDBOX", "none")]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "peek").await;
    push_files(
        &server,
        &token,
        "peek",
        &[(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n",
        )],
        &[],
    );
    let (b, _) = run_build(&server, &token, "peek-ci", "peek").await;
    assert_eq!(b["status"], "FAILED", "{b}");
    assert!(b["reason"].as_str().unwrap().contains("bubblewrap"), "{b}");
    let admin = server.user_with_token("root", true);
    create_repo(&server, &admin, "mine").await;
    push_files_as(
        &server,
        "root",
        &admin,
        "mine",
        &[(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands: [echo hi]\n",
        )],
        &[],
    );
    let (b, _) = run_build(&server, &admin, "mine-ci", "mine").await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}");
}

#[tokio::test]
async fn secrets_handed_to_a_runner_do_not_stay_on_disk() {
    let mut server = Server::start(&[]);
    let admin = server.user_with_token("root", true);
    let (s, _) = api(
        &server,
        &admin,
        reqwest::Method::PUT,
        "/secrets/deploy",
        Some(json!({"value": "deploy-secret-123456"})),
    )
    .await;
    assert_eq!(s, 204);
    create_repo(&server, &admin, "slow").await;
    let spec = "version: 0.2\nenv:\n  secrets-manager:\n    X: deploy\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 30\n";
    push_files_as(
        &server,
        "root",
        &admin,
        "slow",
        &[("buildspec.yml", spec)],
        &[],
    );
    let (s, p) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/projects",
        Some(json!({"name": "slow-ci", "repo": "slow"})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let (_, b) = api(
        &server,
        &admin,
        reqwest::Method::POST,
        "/projects/slow-ci/builds",
        Some(json!({})),
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        if build_log(&server, &admin, &id)
            .await
            .contains("\nstarted\n")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let find = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        fn walk(d: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.file_name().is_some_and(|n| n == "secrets.json") {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, &mut out);
        out
    };
    // While the build runs, the runner has read and removed it.
    let builds = server.data_dir.join("builds");
    assert!(find(&builds).is_empty(), "{:?}", find(&builds));
    // A server killed before a runner read the file leaves one behind: the
    // next start removes it.
    server.kill();
    let left = builds.join("killed-build/out");
    std::fs::create_dir_all(&left).unwrap();
    std::fs::write(
        left.join("secrets.json"),
        "{\"X\": \"deploy-secret-123456\"}",
    )
    .unwrap();
    let data = server.data_dir.clone();
    let _server = Server::start_in(&data, &[], &[]);
    assert!(find(&builds).is_empty(), "{:?}", find(&builds));
}
