//! Deployments end to end: real agents (`nubo agent deploy`) on loopback,
//! each in its own root, deploying commits of a Nubo repository.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const APPSPEC: &str = "version: 0.0
os: linux
hooks:
  ApplicationStop:
    - location: scripts/hook.sh
  BeforeInstall:
    - location: scripts/hook.sh
  AfterInstall:
    - location: scripts/hook.sh
  ApplicationStart:
    - location: scripts/hook.sh
      timeout: 60
  ValidateService:
    - location: scripts/hook.sh
    - location: scripts/validate.sh
";

fn hook(version: &str) -> String {
    format!(
        "#!/bin/sh\necho \"$LIFECYCLE_EVENT from {version} id=$DEPLOYMENT_ID app=$APPLICATION_NAME group=$DEPLOYMENT_GROUP_NAME gid=$DEPLOYMENT_GROUP_ID commit=$BUNDLE_COMMIT\"\necho \"err of $LIFECYCLE_EVENT\" >&2\n"
    )
}

/// Fails where the target's root holds `fail-validate` (the scripts run
/// in `<root>/<group>/<deployment>/deployment-archive`).
const VALIDATE: &str = "#!/bin/sh\nif [ -e ../../../fail-validate ]; then echo 'validation failed here' >&2; exit 3; fi\necho valid\n";

fn lifecycle_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split("LifecycleEvent - ").nth(1))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn one_at_a_time_stops_at_a_failing_target_and_rolls_back() {
    let server = Server::start(&[]);
    let (alice, agent_token) = deploy_setup(&server).await;
    create_repo(&server, &alice, "web").await;
    let v1 = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", APPSPEC),
            ("scripts/hook.sh", &hook("v1")),
            ("scripts/validate.sh", "#!/bin/sh\necho valid\n"),
        ],
    )
    .await;
    let t1 = Target::start(&server, &agent_token, "t1", "env=test,role=web");
    let t2 = Target::start(&server, &agent_token, "t2", "env=test");
    let _other = Target::start(&server, &agent_token, "elsewhere", "env=prod");
    let targets = wait_online(&server, &alice, 3).await;
    assert!(
        targets
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "t1" && t["tags"]["role"] == "web"),
        "{targets:#}"
    );
    let group = app_and_group(
        &server,
        &alice,
        "shop",
        "test",
        "CodeDeployDefault.OneAtATime",
        true,
    )
    .await;
    let gid = group["id"].as_str().unwrap();

    // First revision: both targets, in order, with AWS's hook environment.
    let d1 = deploy_commit(&server, &alice, "shop", "test", "web", &v1).await;
    assert!(d1.starts_with("d-") && d1.len() == 11, "{d1}");
    let done = wait_done(&server, &alice, &d1).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    let names: Vec<&str> = done["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["t1", "t2"],
        "the group reaches only env=test targets: {done:#}"
    );
    for t in done["targets"].as_array().unwrap() {
        let events: Vec<(&str, &str)> = t["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap(), e["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            events,
            [
                ("ApplicationStop", "Succeeded"),
                ("DownloadBundle", "Succeeded"),
                ("BeforeInstall", "Succeeded"),
                ("Install", "Succeeded"),
                ("AfterInstall", "Succeeded"),
                ("ApplicationStart", "Succeeded"),
                ("ValidateService", "Succeeded")
            ],
            "{done:#}"
        );
    }
    let log = t1.log(gid, &d1);
    // A first deployment has no earlier revision whose ApplicationStop could run.
    assert_eq!(
        lifecycle_lines(&log),
        [
            "BeforeInstall",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService"
        ],
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "[stdout]ApplicationStart from v1 id={d1} app=shop group=test gid={gid} commit={v1}"
        )),
        "{log}"
    );
    assert!(log.contains("[stderr]err of BeforeInstall"), "{log}");
    assert!(t1.root.join(gid).join(&d1).join("bundle.tar").is_file());
    assert!(t1
        .root
        .join(gid)
        .join(&d1)
        .join("deployment-archive/appspec.yml")
        .is_file());
    let last = std::fs::read_to_string(t1.root.join(format!(
        "deployment-instructions/{gid}_last_successful_install"
    )))
    .unwrap();
    assert!(last.ends_with(&d1), "{last}");
    let targets = wait_online(&server, &alice, 3).await;
    let rev1 = format!("web@{}", &v1[..12]);
    for name in ["t1", "t2"] {
        let t = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap();
        assert_eq!(t["revision"], rev1.as_str(), "{targets:#}");
    }

    let out = server.cli(&["deploy", "status", &d1], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{d1}  Succeeded  shop/test  {rev1}"))
            && text.contains("ValidateService"),
        "{text}"
    );
    let out = server.cli(&["deploy", "targets"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("t1  online  env=test,role=web  {rev1}")),
        "{text}"
    );

    // Second revision fails ValidateService on t2: the deployment stops
    // there, and the automatic rollback redeploys v1 as a new deployment.
    std::fs::create_dir_all(&t2.root).unwrap();
    std::fs::write(t2.root.join("fail-validate"), "").unwrap();
    let v2 = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", APPSPEC),
            ("scripts/hook.sh", &hook("v2")),
            ("scripts/validate.sh", VALIDATE),
        ],
    )
    .await;
    let d2 = deploy_commit(&server, &alice, "shop", "test", "web", &v2).await;
    let failed = wait_done(&server, &alice, &d2).await;
    assert_eq!(failed["status"], "Failed", "{failed:#}");
    assert_eq!(
        event_status(&failed, "t1", "ValidateService")["status"],
        "Succeeded",
        "{failed:#}"
    );
    let bad = event_status(&failed, "t2", "ValidateService");
    assert_eq!(
        (bad["status"].as_str(), bad["error_code"].as_i64()),
        (Some("Failed"), Some(4)),
        "{failed:#}"
    );
    assert_eq!(bad["script_name"], "scripts/validate.sh", "{failed:#}");
    assert!(
        bad["log_tail"]
            .as_str()
            .unwrap()
            .contains("[stderr]validation failed here"),
        "{failed:#}"
    );
    assert!(
        bad["message"].as_str().unwrap().contains("exit code 3"),
        "{failed:#}"
    );
    // ApplicationStop ran the last successful revision's script.
    let log2 = t1.log(gid, &d2);
    assert!(
        log2.contains(&format!("[stdout]ApplicationStop from v1 id={d2}")),
        "{log2}"
    );
    assert!(log2.contains("[stdout]ApplicationStart from v2"), "{log2}");

    let rollback = failed["rolled_back_by"]
        .as_str()
        .expect("an automatic rollback")
        .to_string();
    assert_ne!(rollback, d2);
    let r = wait_done(&server, &alice, &rollback).await;
    assert_eq!(
        (
            r["status"].as_str(),
            r["rollback_of"].as_str(),
            r["creator"].as_str()
        ),
        (
            Some("Succeeded"),
            Some(d2.as_str()),
            Some("codeDeployRollback")
        ),
        "{r:#}"
    );
    assert_eq!(r["revision"]["commit"], v1.as_str(), "{r:#}");
    // The rollback stops what v2 started with v2's own script (it is the
    // last revision whose Install went through), then starts v1 again.
    let log3 = t1.log(gid, &rollback);
    assert!(log3.contains("[stdout]ApplicationStop from v2"), "{log3}");
    assert!(log3.contains("[stdout]ApplicationStart from v1"), "{log3}");
    let list = api(
        &server,
        &alice,
        Method::GET,
        "/deploy/applications/shop/groups/test",
        None,
    )
    .await
    .1;
    assert_eq!(list["deployments"].as_array().unwrap().len(), 3, "{list:#}");
    assert_eq!(
        list["deployments"][0]["id"],
        rollback.as_str(),
        "newest first: {list:#}"
    );

    // By hand: redeploy the last good revision (v1, the rollback's).
    let (s, again) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/applications/shop/groups/test/rollback",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (s, again["redeploys"].as_str()),
        (201, Some(rollback.as_str())),
        "{again}"
    );
    let again = wait_done(&server, &alice, again["id"].as_str().unwrap()).await;
    assert_eq!(
        (
            again["status"].as_str(),
            again["revision"]["commit"].as_str()
        ),
        (Some("Succeeded"), Some(v1.as_str())),
        "{again:#}"
    );

    // Nobody else sees the application or can deploy onto alice's targets.
    let bob = server.user_with_token("bob", false);
    let (s, _) = api(
        &server,
        &bob,
        Method::GET,
        &format!("/deploy/deployments/{d1}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = api(
        &server,
        &bob,
        Method::POST,
        "/deploy/applications",
        Some(json!({"name": "bobs"})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = api(
        &server,
        &bob,
        Method::POST,
        "/deploy/applications/bobs/groups",
        Some(json!({"name": "g", "tags": {"env": "test"}})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, d) = api(
        &server,
        &bob,
        Method::POST,
        "/deploy/applications/bobs/groups/g/deployments",
        Some(json!({"revision": {"repo": "web", "commit": v1}})),
    )
    .await;
    assert_eq!(s, 403, "bob cannot read alice's repository: {d}");
    // With his own revision, his group reaches none of alice's targets.
    create_repo(&server, &bob, "bobweb").await;
    let b1 = push_files_as(
        &server,
        "bob",
        &bob,
        "bobweb",
        &[("appspec.yml", "version: 0.0\nos: linux\n")],
        &[],
    );
    let (s, d) = api(
        &server,
        &bob,
        Method::POST,
        "/deploy/applications/bobs/groups/g/deployments",
        Some(json!({"revision": {"repo": "bobweb", "commit": b1}})),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    let none = wait_done(&server, &bob, d["id"].as_str().unwrap()).await;
    assert_eq!(none["status"], "Failed", "{none:#}");
    assert!(
        none["message"].as_str().unwrap().contains("no targets"),
        "{none:#}"
    );
    assert_eq!(none["targets"], json!([]), "{none:#}");
    let (s, _) = api(&server, &bob, Method::GET, "/deploy/targets", None).await;
    assert_eq!(s, 200);
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/agent-tokens",
        Some(json!({"description": "x"})),
    )
    .await;
    assert_eq!(s, 403, "only administrators mint agent tokens");
}

/// Forwards 127.0.0.1:PORT to wherever `to` says the server is now, so an
/// agent keeps one address across a server restart.
async fn forwarder(to: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let target = to.lock().unwrap().trim_start_matches("http://").to_string();
            tokio::spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_server_killed_mid_deployment_carries_on_where_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[], &[]);
    let (alice, agent_token) = deploy_setup(&server).await;
    create_repo(&server, &alice, "web").await;
    let spec = "version: 0.0\nos: linux\nhooks:\n  ApplicationStart:\n    - location: slow.sh\n";
    let c = push(
        &server,
        &alice,
        "web",
        &[
            ("appspec.yml", spec),
            (
                "slow.sh",
                "#!/bin/sh\nsleep 3 > /dev/null 2>&1\necho done\n",
            ),
        ],
    )
    .await;
    let now = std::sync::Arc::new(std::sync::Mutex::new(server.base.clone()));
    let via = forwarder(now.clone()).await;
    let mut t = Target::start(&server, &agent_token, "t1", "env=test");
    // The agent talks to the forwarder, not to this server's own port.
    t.kill();
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "agent",
        "deploy",
        "--server",
        &via,
        "--token",
        &agent_token,
        "--name",
        "t1",
        "--tags",
        "env=test",
    ])
    .arg("--root")
    .arg(&t.root)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    t.child = Some(cmd.spawn().unwrap());
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
    let id = deploy_commit(&server, &alice, "shop", "test", "web", &c).await;
    wait_deployment(&server, &alice, &id, "ApplicationStart running", |d| {
        event_status(d, "t1", "ApplicationStart")["status"] == "InProgress"
    })
    .await;
    // SIGKILL while the hook runs; a new server on the same data.
    server.kill();
    let server = Server::start_in(&data, &[], &[]);
    *now.lock().unwrap() = server.base.clone();
    let d = wait_done(&server, &alice, &id).await;
    assert_eq!(
        d["status"], "Succeeded",
        "the agent's completion reached the new server: {d:#}"
    );
    assert!(
        event_status(&d, "t1", "ValidateService")["status"] == "Succeeded",
        "{d:#}"
    );
    let next = deploy_commit(&server, &alice, "shop", "test", "web", &c).await;
    assert_eq!(
        wait_done(&server, &alice, &next).await["status"],
        "Succeeded"
    );
}
