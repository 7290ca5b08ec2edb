//! Workspaces on the container backend against a real Podman service (the
//! test command installs Podman and builds the workspace image): isolation,
//! git from inside the container, terminals, and containment of a fork bomb
//! and a memory hog.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_container_workspace_is_confined_and_its_git_works() {
    let podman = Podman::start();
    let (k, v) = podman.env();
    let mut first = Server::start(&[(k, v.as_str())]);
    let token = first.user_with_token("alice", false);
    repo_with_readme(&first, &token, "app").await;
    let server = &first;
    let ws = create_ws(
        server,
        &token,
        json!({"name": "box", "repo": "app", "backend": "container"}),
    )
    .await;
    let id = ws["id"].as_str().unwrap().to_string();
    assert_eq!(ws["state"], "running");
    assert_eq!(ws["backend"], "container");

    // Who and where: uid 1000 in /workspace, no capabilities, limits set.
    let out = exec(server, &token, &id, &["sh", "-c", "id -u; pwd; grep CapEff /proc/self/status; cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null | head -1"]).await;
    let stdout = out["stdout"].as_str().unwrap();
    assert!(
        stdout.starts_with("1000\n/workspace\nCapEff:\t0000000000000000\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("512\n"), "pids limit: {stdout}");
    // Not the engine's socket, not the host's files, not other workspaces.
    let data = server.data_dir.display().to_string();
    let probe = format!(
        "for p in /run/podman /var/run/docker.sock {} {}; do test -e $p && echo VISIBLE $p; done; echo checked",
        podman.socket.display(),
        data
    );
    let out = exec(server, &token, &id, &["sh", "-c", &probe]).await;
    assert_eq!(out["stdout"], "checked\n", "{out}");
    // The checkout is there; the file API and the container agree.
    let out = exec(server, &token, &id, &["cat", "README.md"]).await;
    assert_eq!(out["stdout"], "# Hello from the repo\n");
    let r = client()
        .put(server.url(&format!("/api/v1/workspaces/{id}/files/notes.txt")))
        .bearer_auth(&token)
        .body("written through the API\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = exec(
        server,
        &token,
        &id,
        &["sh", "-c", "cat notes.txt; stat -c %u notes.txt"],
    )
    .await;
    assert_eq!(out["stdout"], "written through the API\n1000\n");

    // git push from inside reaches the server through the agent's relay.
    let out = exec(
        server,
        &token,
        &id,
        &[
            "sh",
            "-c",
            "git add -A && git commit -qm 'from the container' && git push -q origin main 2>&1",
        ],
    )
    .await;
    assert_eq!(out["exit_code"], 0, "{out}");
    let (_, commits) = api(
        server,
        &token,
        reqwest::Method::GET,
        "/repos/app/commits?ref=main",
        None,
    )
    .await;
    assert!(
        commits.to_string().contains("from the container"),
        "{commits}"
    );

    // A terminal in the container.
    let (_, t) = api(
        server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/terminals"),
        None,
    )
    .await;
    let mut term = attach(server, &token, &id, t["id"].as_str().unwrap()).await;
    type_line(&mut term, "echo in-$(hostname)-$((3*4))").await;
    read_until(&mut term, "in-box-12").await;
    type_line(&mut term, "export KEPT=yes-$((1+1)) && echo set-$((2*4))").await;
    read_until(&mut term, "set-8").await;
    drop(term);

    // The server restarts; the container, its terminal and git keep working.
    first.kill();
    let data = first.data_dir.clone();
    let second = Server::start_in(&data, &[(k, v.as_str())], &[]);
    let server = &second;
    let (s, list) = api(
        server,
        &token,
        reqwest::Method::GET,
        &format!("/workspaces/{id}/terminals"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let mut term = attach(server, &token, &id, list[0]["id"].as_str().unwrap()).await;
    read_until(&mut term, "in-box-12").await;
    type_line(&mut term, "echo $KEPT").await;
    read_until(&mut term, "yes-2").await;
    drop(term);
    let out = exec(
        server,
        &token,
        &id,
        &[
            "sh",
            "-c",
            "git commit -q --allow-empty -m 'after the restart' && git push -q origin main 2>&1",
        ],
    )
    .await;
    assert_eq!(out["exit_code"], 0, "{out}");

    // Files persist across stop and start; delete removes the container.
    let (s, ws) = api(
        server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/stop"),
        None,
    )
    .await;
    assert_eq!((s, ws["state"].as_str()), (200, Some("stopped")));
    let (s, ws) = api(
        server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{id}/start"),
        None,
    )
    .await;
    assert_eq!((s, ws["state"].as_str()), (200, Some("running")));
    let out = exec(server, &token, &id, &["cat", "notes.txt"]).await;
    assert_eq!(out["stdout"], "written through the API\n");
    let (s, _) = api(
        server,
        &token,
        reqwest::Method::DELETE,
        &format!("/workspaces/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let out = podman.podman(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=io.nubo.workspace={id}"),
        "-q",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "the container is gone"
    );
}

#[tokio::test]
async fn a_fork_bomb_or_a_memory_hog_stays_in_its_workspace() {
    let podman = Podman::start();
    let (k, v) = podman.env();
    let server = Server::start(&[
        (k, v.as_str()),
        ("NUBO_WORKSPACE_MEMORY_MB", "256"),
        ("NUBO_WORKSPACE_PIDS", "128"),
        ("NUBO_WORKSPACE_NETWORK", "none"),
    ]);
    let token = server.user_with_token("alice", false);
    let a = create_ws(
        &server,
        &token,
        json!({"name": "noisy", "backend": "container"}),
    )
    .await;
    let b = create_ws(
        &server,
        &token,
        json!({"name": "quiet", "backend": "container"}),
    )
    .await;
    let (a, b) = (
        a["id"].as_str().unwrap().to_string(),
        b["id"].as_str().unwrap().to_string(),
    );

    // An image the engine does not have is a clear error, and nothing is left.
    let (s, body) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/workspaces",
        Some(json!({"name": "odd", "backend": "container", "image": "localhost/no-such-image:1"})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("localhost/no-such-image:1"),
        "{body}"
    );

    // A memory hog is killed by its own limit (128 + SIGKILL).
    let out = exec(
        &server,
        &token,
        &a,
        &["python3", "-c", "a = bytearray(1 << 30)"],
    )
    .await;
    assert_eq!(out["exit_code"], 137, "{out}");

    // Exhausting the pids limit (what a fork bomb does) stays in the
    // workspace. The filler forks sleepers until the limit is reached and
    // then keeps trying, so every freed slot is taken again; it runs in a
    // session of its own, so the exec's end (which kills the exec's process
    // group) leaves it, and it holds the limit until the restart below. (A
    // bash `b | b &` bomb made this a race: bash gives up when fork fails,
    // and its processes die out.)
    let filler = "import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.execv(\"/bin/sleep\", [\"sleep\", \"1000\"])\n    except OSError:\n        time.sleep(0.01)\n";
    let bomb = format!("setsid python3 -c '{filler}' </dev/null >/dev/null 2>&1 & sleep 2");
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{a}/exec"),
        Some(json!({"command": ["bash", "-c", bomb], "timeout_s": 4})),
    )
    .await;
    assert_eq!(s, 200);
    let http = client();
    let t = Instant::now();
    let r = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "the server stayed responsive"
    );
    let out = exec(&server, &token, &b, &["echo", "unaffected"]).await;
    assert_eq!(out["stdout"], "unaffected\n");
    // The noisy workspace cannot start anything more, and says so (the
    // refusal is looked for over a few tries, in case the filler had not
    // yet taken a slot freed a moment before)...
    let mut answers = Vec::new();
    for _ in 0..20 {
        let (s, body) = api(
            &server,
            &token,
            reqwest::Method::POST,
            &format!("/workspaces/{a}/exec"),
            Some(json!({"command": ["true"]})),
        )
        .await;
        if s == 422 {
            answers.clear();
            break;
        }
        answers.push((s, body));
    }
    assert!(answers.is_empty(), "never refused: {answers:?}");
    // ...until it is restarted.
    let (s, _) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/workspaces/{a}/restart"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let out = exec(&server, &token, &a, &["echo", "recovered"]).await;
    assert_eq!(out["stdout"], "recovered\n");
    for id in [&a, &b] {
        api(
            &server,
            &token,
            reqwest::Method::DELETE,
            &format!("/workspaces/{id}"),
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn container_workspaces_need_a_configured_engine() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let (s, body) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/workspaces",
        Some(json!({"name": "c", "backend": "container"})),
    )
    .await;
    assert_eq!(s, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not configured"),
        "{body}"
    );
    let (_, list) = api(&server, &token, reqwest::Method::GET, "/workspaces", None).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn a_project_with_an_image_builds_in_a_container_that_contains_a_fork_bomb() {
    let podman = Podman::start();
    let (k, v) = podman.env();
    let server = Server::start(&[
        (k, v.as_str()),
        ("NUBO_WORKSPACE_PIDS", "128"),
        ("NUBO_WORKSPACE_NETWORK", "none"),
    ]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "app").await;
    repo_with_readme(&server, &token, "app2").await;
    let (s, p) = api(&server, &token, reqwest::Method::POST, "/projects", Some(json!({
        "name": "in-a-box", "repo": "app2", "image": "localhost/nubo-workspace:latest", "pids": 64,
        "buildspec": "version: 0.2\nenv:\n  exported-variables: [WHO]\nphases:\n  build:\n    commands:\n      - echo \"in $(cat /etc/debian_version | cut -c1-2) as $(id -u) on $CODEBUILD_BUILD_IMAGE\"\n      - export WHO=$(id -un)\n      - echo \"pids=$(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max)\"\n      - mkdir -p out && cp README.md out/\nartifacts:\n  files: [README.md]\n  base-directory: out\n"
    }))).await;
    assert_eq!(s, 201, "{p}");
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/in-a-box/builds",
        None,
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let b = wait_build(&server, &token, &id).await;
    let log = build_log(&server, &token, &id).await;
    assert_eq!(b["status"], "SUCCEEDED", "{b}\n{log}");
    assert!(
        log.contains("in 12 as 0 on localhost/nubo-workspace:latest"),
        "{log}"
    );
    assert_eq!(b["exported_variables"], json!([["WHO", "root"]]));
    assert!(
        log.contains("\npids=64\n"),
        "the project's pids limit: {log}"
    );
    let (s, e) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects",
        Some(json!({"name": "tiny", "repo": "app2", "memory_mb": 8})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(b["artifacts"], 1);

    // A loud build loses no line of its log.
    let (s, _) = api(&server, &token, reqwest::Method::POST, "/projects", Some(json!({
        "name": "loud", "repo": "app2", "image": "localhost/nubo-workspace:latest",
        "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n      - seq -f 'line-%06g' 1 100000\n      - echo after\n"
    }))).await;
    assert_eq!(s, 201);
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/loud/builds",
        None,
    )
    .await;
    let loud = b["id"].as_str().unwrap().to_string();
    let b = wait_build(&server, &token, &loud).await;
    assert_eq!(b["status"], "SUCCEEDED");
    let text = build_log(&server, &token, &loud).await;
    assert_eq!(
        text.lines().filter(|l| l.starts_with("line-")).count(),
        100_000
    );
    assert!(
        text.contains("\nline-100000\n") && text.contains("Build SUCCEEDED"),
        "the end of the log is there"
    );

    // A fork bomb hits the container's pids limit; the build is stopped and
    // the server carries on. (`wait` is a builtin: the command waits for
    // the sleep started before the bomb, with no fork left to make.)
    let (s, _) = api(&server, &token, reqwest::Method::POST, "/projects", Some(json!({
        "name": "bomb", "repo": "app2", "image": "localhost/nubo-workspace:latest",
        "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n      - echo bombing\n      - 'sleep 60 & b() { b | b & }; b; wait'\n"
    }))).await;
    assert_eq!(s, 201);
    let (_, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects/bomb/builds",
        None,
    )
    .await;
    let bomb = b["id"].as_str().unwrap().to_string();
    for _ in 0..100 {
        if build_log(&server, &token, &bomb)
            .await
            .contains("\nbombing")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    let (s, b) = api(
        &server,
        &token,
        reqwest::Method::POST,
        &format!("/builds/{bomb}/stop"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let b = wait_build(&server, &token, b["id"].as_str().unwrap()).await;
    assert_eq!(b["status"], "STOPPED", "{b}");
    // This build's container is gone (other tests' builds may be running).
    let name = format!("nubo-build-{}", bomb.replace(':', "-"));
    let out = podman.podman(&["ps", "-aq", "--filter", &format!("name={name}")]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "the build container is removed"
    );
    // Without the image the project is refused with the reason.
    let (s, e) = api(
        &server,
        &token,
        reqwest::Method::POST,
        "/projects",
        Some(json!({"name": "noimg", "repo": "app2", "image": "localhost/absent:1"})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
}

#[test]
fn the_cli_builds_in_a_container_too() {
    let podman = Podman::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"debian $(cut -c1-2 /etc/debian_version) $CODEBUILD_BUILD_IMAGE $GREETING\"\n      - mkdir -p dist && echo built > dist/out.txt\nartifacts:\n  files: ['**/*']\n  base-directory: dist\n",
    )
    .unwrap();
    let art = tmp.path().join("art");
    let out = std::process::Command::new(BIN)
        .args(["build", "--source"])
        .arg(&src)
        .args([
            "--image",
            "localhost/nubo-workspace:latest",
            "--env",
            "GREETING=hi",
            "--artifacts",
        ])
        .arg(&art)
        .env("NUBO_CONTAINER_SOCKET", &podman.socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\ndebian 12 localhost/nubo-workspace:latest hi\n"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(art.join("out.txt")).unwrap(),
        "built\n"
    );
    // Without an engine, a clear error.
    let out = std::process::Command::new(BIN)
        .args(["build", "--source"])
        .arg(&src)
        .args(["--image", "localhost/nubo-workspace:latest"])
        .env_remove("NUBO_CONTAINER_SOCKET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a container engine"));
}
