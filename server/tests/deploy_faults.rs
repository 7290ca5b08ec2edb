//! Deployments when things go wrong: configurations' minimum healthy
//! rules, an agent restarted mid-hook, a hook that leaves a process
//! holding its output, and bad revisions and tokens.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

fn appspec(start: &str) -> String {
    format!("version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: {start}\n      timeout: 120\n  ValidateService:\n    - location: scripts/validate.sh\n")
}

const VALIDATE: &str =
    "#!/bin/sh\nif [ -e ../../../fail-validate ]; then echo 'not healthy' >&2; exit 1; fi\n";

#[tokio::test]
async fn configurations_decide_with_their_minimum_healthy() {
    let server = Server::start(&[]);
    let (alice, agent_token) = deploy_setup(&server).await;
    create_repo(&server, &alice, "web").await;
    let c = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &appspec("scripts/start.sh")),
            ("scripts/start.sh", "#!/bin/sh\necho up\n"),
            ("scripts/validate.sh", VALIDATE),
        ],
    )
    .await;
    let _t1 = Target::start(&server, &agent_token, "t1", "env=test");
    let t2 = Target::start(&server, &agent_token, "t2", "env=test");
    std::fs::create_dir_all(&t2.root).unwrap();
    std::fs::write(t2.root.join("fail-validate"), "").unwrap();
    wait_online(&server, &alice, 2).await;
    let (s, cfg) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/configs",
        Some(json!({"name": "AllHealthy", "kind": "HOST_COUNT", "value": 2})),
    )
    .await;
    assert_eq!(s, 201, "{cfg}");
    let (s, e) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/configs",
        Some(json!({"name": "Bad", "kind": "FLEET_PERCENT", "value": 100})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    // One target of two fails: AllAtOnce and HalfAtATime accept that,
    // OneAtATime and a minimum of two healthy targets do not.
    for (group, config, want) in [
        ("all", "CodeDeployDefault.AllAtOnce", "Succeeded"),
        ("half", "CodeDeployDefault.HalfAtATime", "Succeeded"),
        ("one", "CodeDeployDefault.OneAtATime", "Failed"),
        ("strict", "AllHealthy", "Failed"),
    ] {
        app_and_group(&server, &alice, "shop", group, config, false).await;
        let id = deploy_commit(&server, &alice, "shop", group, "web", &c).await;
        let d = wait_done(&server, &alice, &id).await;
        assert_eq!(d["status"], want, "{config}: {d:#}");
        assert_eq!(
            event_status(&d, "t1", "ValidateService")["status"],
            "Succeeded",
            "{config}: {d:#}"
        );
        assert_eq!(
            event_status(&d, "t2", "ValidateService")["error_code"],
            4,
            "{config}: {d:#}"
        );
        assert!(
            d.get("rolled_back_by").is_none(),
            "no automatic rollback configured: {d:#}"
        );
    }
    let (s, e) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/applications/shop/groups",
        Some(json!({"name": "x", "config": "Nope", "tags": {"env": "test"}})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
}

#[tokio::test]
async fn an_agent_restarted_mid_hook_fails_the_event_at_once_and_the_next_deployment_works() {
    let server = Server::start(&[]);
    let (alice, agent_token) = deploy_setup(&server).await;
    create_repo(&server, &alice, "web").await;
    let slow = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &appspec("scripts/slow.sh")),
            (
                "scripts/slow.sh",
                "#!/bin/sh\necho starting\nsleep 40 > /dev/null 2>&1\n",
            ),
            ("scripts/validate.sh", VALIDATE),
        ],
    )
    .await;
    let mut t = Target::start(&server, &agent_token, "t1", "env=test");
    wait_online(&server, &alice, 1).await;
    app_and_group(
        &server,
        &alice,
        "shop",
        "test",
        "CodeDeployDefault.OneAtATime",
        false,
    )
    .await;
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &slow).await;
    wait_deployment(&server, &alice, &id, "ApplicationStart running", |d| {
        event_status(d, "t1", "ApplicationStart")["status"] == "InProgress"
    })
    .await;
    t.restart();
    let d = wait_done(&server, &alice, &id).await;
    let e = event_status(&d, "t1", "ApplicationStart");
    assert_eq!(
        (d["status"].as_str(), e["error_code"].as_i64()),
        (Some("Failed"), Some(7)),
        "{d:#}"
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("after an agent restart"),
        "reported by the agent itself, not by the offline check: {d:#}"
    );
    assert_eq!(
        event_status(&d, "t1", "ValidateService")["status"],
        "Skipped",
        "{d:#}"
    );

    let quick = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &appspec("scripts/validate.sh")),
            ("scripts/validate.sh", VALIDATE),
        ],
    )
    .await;
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &quick).await;
    assert_eq!(wait_done(&server, &alice, &id).await["status"], "Succeeded");

    // A hook that backgrounds a process without redirecting its output.
    let leaky = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &appspec("scripts/leak.sh")),
            ("scripts/leak.sh", "#!/bin/sh\nsleep 317 &\necho started\n"),
            ("scripts/validate.sh", VALIDATE),
        ],
    )
    .await;
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &leaky).await;
    let d = wait_done(&server, &alice, &id).await;
    let e = event_status(&d, "t1", "ApplicationStart");
    assert_eq!(
        (d["status"].as_str(), e["error_code"].as_i64()),
        (Some("Failed"), Some(6)),
        "{d:#}"
    );
    let m = e["message"].as_str().unwrap();
    assert!(
        m.contains("sleep 317") && m.contains("/dev/null"),
        "the process is named, with the fix: {m}"
    );
    assert!(
        e["log_tail"].as_str().unwrap().contains("[stdout]started"),
        "{d:#}"
    );

    // A revoked token: the agent is refused and stops, saying why.
    let (_, tokens) = api(
        &server,
        &server.user_with_token("ops", true),
        Method::GET,
        "/deploy/agent-tokens",
        None,
    )
    .await;
    let tid = tokens[0]["id"].as_str().unwrap().to_string();
    let out = server.cli(&["deploy", "token", "revoke", &tid], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = t.wait_exit(std::time::Duration::from_secs(40));
    assert_eq!(code, Some(1), "{}", t.stderr.lock().unwrap());
    assert!(
        t.stderr
            .lock()
            .unwrap()
            .contains("refused this agent's token"),
        "{}",
        t.stderr.lock().unwrap()
    );
}

#[tokio::test]
async fn install_follows_file_exists_behavior_and_removes_what_the_last_one_installed() {
    let server = Server::start(&[]);
    let (alice, agent_token) = deploy_setup(&server).await;
    create_repo(&server, &alice, "web").await;
    let dest = tempfile::tempdir().unwrap();
    let app = dest.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("index.html"), "not ours").unwrap();
    std::fs::write(app.join("local.conf"), "mine").unwrap();
    let _t = Target::start_confined(&server, &agent_token, "t1", "env=test", dest.path());
    wait_online(&server, &alice, 1).await;
    app_and_group(
        &server,
        &alice,
        "shop",
        "test",
        "CodeDeployDefault.OneAtATime",
        false,
    )
    .await;
    let spec = |behavior: &str, to: &str| {
        format!("version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {to}\nfile_exists_behavior: {behavior}\npermissions:\n  - object: {to}\n    pattern: \"*.key\"\n    mode: 600\n    type: [file]\n")
    };
    let to = app.display().to_string();
    let c = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &spec("DISALLOW", &to)),
            ("site/index.html", "v1"),
        ],
    )
    .await;
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &c).await;
    let d = wait_done(&server, &alice, &id).await;
    let e = event_status(&d, "t1", "Install");
    assert_eq!(
        (e["status"].as_str(), e["error_code"].as_i64()),
        (Some("Failed"), Some(5)),
        "{d:#}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("already exists"),
        "{d:#}"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("index.html")).unwrap(),
        "not ours"
    );

    let c = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &spec("OVERWRITE", &to)),
            ("site/index.html", "v2"),
            ("site/extra/notes.txt", "x"),
            ("site/tls.key", "k"),
        ],
    )
    .await;
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &c).await;
    assert_eq!(wait_done(&server, &alice, &id).await["status"], "Succeeded");
    assert_eq!(
        std::fs::read_to_string(app.join("index.html")).unwrap(),
        "v2"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("extra/notes.txt")).unwrap(),
        "x"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(app.join("tls.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(app.join("index.html"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );

    let c = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &spec("RETAIN", &to)),
            ("site/index.html", "v3"),
            ("site/local.conf", "theirs"),
        ],
    )
    .await;
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &c).await;
    assert_eq!(wait_done(&server, &alice, &id).await["status"], "Succeeded");
    assert_eq!(
        std::fs::read_to_string(app.join("index.html")).unwrap(),
        "v3"
    );
    assert_eq!(
        std::fs::read_to_string(app.join("local.conf")).unwrap(),
        "mine",
        "RETAIN keeps a file the last deployment did not install"
    );
    assert!(
        !app.join("extra").exists() && !app.join("tls.key").exists(),
        "what v2 installed and v3 does not is gone"
    );

    // A destination outside where this agent may install.
    let c = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &spec("OVERWRITE", "/opt/nubo-elsewhere")),
            ("site/index.html", "v4"),
        ],
    )
    .await;
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &c).await;
    let d = wait_done(&server, &alice, &id).await;
    assert!(
        event_status(&d, "t1", "Install")["message"]
            .as_str()
            .unwrap()
            .contains("outside"),
        "{d:#}"
    );
    assert!(!std::path::Path::new("/opt/nubo-elsewhere").exists());
}

#[tokio::test]
async fn bad_revisions_are_refused_with_positions_or_fail_clearly() {
    let server = Server::start(&[]);
    let (alice, agent_token) = deploy_setup(&server).await;
    create_repo(&server, &alice, "web").await;
    let _t = Target::start(&server, &agent_token, "t1", "env=test");
    wait_online(&server, &alice, 1).await;
    app_and_group(
        &server,
        &alice,
        "shop",
        "test",
        "CodeDeployDefault.OneAtATime",
        false,
    )
    .await;
    let path = "/deploy/applications/shop/groups/test/deployments";
    let bad = push(
        &server,
        &alice,
        "web",
        &[(
            "appspec.yml",
            "version: 1\nos: linux\nhooks:\n  AfterInstal:\n    - location: x.sh\n",
        )],
    )
    .await;
    let (s, e) = api(
        &server,
        &alice,
        Method::POST,
        path,
        Some(json!({"revision": {"repo": "web", "commit": bad}})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    let m = e["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("appspec.yml:1:10: error") && m.contains("appspec.yml:4:3: error"),
        "{m}"
    );
    let missing = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &appspec("scripts/none.sh")),
            ("scripts/validate.sh", VALIDATE),
        ],
    )
    .await;
    let (s, e) = api(
        &server,
        &alice,
        Method::POST,
        path,
        Some(json!({"revision": {"repo": "web", "commit": missing}})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("scripts/none.sh is not in the bundle"),
        "{e}"
    );
    let (s, e) = api(
        &server,
        &alice,
        Method::POST,
        path,
        Some(json!({"revision": {"repo": "web", "commit": "--upload-pack=x"}})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    let (s, e) = api(
        &server,
        &alice,
        Method::POST,
        path,
        Some(json!({"revision": {"repo": "web"}})),
    )
    .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(server.stderr.lock().unwrap().matches("panicked").count(), 0);

    // A link out of the bundle: nothing is unpacked.
    let evil = push_files(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", &appspec("scripts/validate.sh")),
            ("scripts/validate.sh", VALIDATE),
        ],
        &[("passwd", "../../../../../../etc/passwd")],
    );
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &evil).await;
    let d = wait_done(&server, &alice, &id).await;
    let e = event_status(&d, "t1", "DownloadBundle");
    assert_eq!(e["status"], "Failed", "{d:#}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("leading outside the archive"),
        "{d:#}"
    );

    // nubo appspec check, offline.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("appspec.yml");
    std::fs::write(&f, "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: run.sh\n      timeout: 0\n").unwrap();
    let out = server.cli(&["appspec", "check", f.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:6:16: error: timeout", f.display())),
        "{err}"
    );
    std::fs::write(
        &f,
        "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/app\n",
    )
    .unwrap();
    let out = server.cli(&["appspec", "check", f.to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
