//! Managed targets on the container backend (a real Podman service and the
//! workspace image the test command builds): each target in a container of
//! its own, confined as container workspaces are, serving the deployed
//! revision at the app URL; a dead container is started again.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

const WHO: &str = "#!/bin/sh\n{ id -u; cat /proc/sys/kernel/hostname; grep CapEff /proc/self/status; if test -e /run/podman; then echo ENGINE; fi; } > /srv/site/who.txt\n";

#[tokio::test]
async fn managed_targets_run_each_in_a_container_of_their_own() {
    let podman = Podman::start();
    let server = Server::start(&[podman.env_ref()]);
    let alice = server.user_with_token("alice", false);
    create_repo(&server, &alice, "web").await;
    let appspec = MANAGED_APPSPEC.replace(
        "  ValidateService:",
        "  AfterInstall:\n    - location: scripts/who.sh\n  ValidateService:",
    );
    let files = [
        ("appspec.yml", appspec.as_str()),
        ("scripts/start.sh", APP_START),
        ("scripts/stop.sh", APP_STOP),
        ("scripts/check.sh", APP_CHECK),
        ("scripts/who.sh", WHO),
        ("site/index.html", "<h1>boxed v1</h1>\n"),
    ];
    let v1 = push_files(&server, &alice, "web", &files, &[]);
    let (s, a) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/applications",
        Some(json!({"name": "shop"})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    // An image the engine does not have is refused at once.
    let (s, e) = api(&server, &alice, Method::POST, "/deploy/applications/shop/groups",
        Some(json!({"name": "web", "managed": {"count": 2, "port": 8080, "image": "localhost/no-such-image:1"}}))).await;
    assert_eq!(s, 422, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not available"),
        "{e}"
    );
    let (s, g) = api(&server, &alice, Method::POST, "/deploy/applications/shop/groups",
        Some(json!({"name": "web", "config": "CodeDeployDefault.AllAtOnce",
                    "managed": {"count": 2, "port": 8080, "image": "localhost/nubo-workspace:latest"}}))).await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["managed_image"], "localhost/nubo-workspace:latest");
    let targets = wait_online(&server, &alice, 2).await;
    assert_eq!(targets.as_array().unwrap().len(), 2, "{targets:#}");
    // Two containers, one per target.
    let ps = podman.podman(&[
        "ps",
        "--filter",
        "label=io.nubo.deploy-target",
        "--format",
        "{{.Names}}",
    ]);
    let names = String::from_utf8_lossy(&ps.stdout).to_string();
    assert_eq!(
        names
            .lines()
            .filter(|n| n.starts_with("nubo-deploy-"))
            .count(),
        2,
        "{names}"
    );

    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v1).await;
    let done = wait_done(&server, &alice, &d).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    let (_, group) = api(
        &server,
        &alice,
        Method::GET,
        "/deploy/applications/shop/groups/web",
        None,
    )
    .await;
    let app_url = group["app_url"].as_str().unwrap().to_string();
    let mut hosts = std::collections::BTreeSet::new();
    for _ in 0..4 {
        // What the hooks saw: uid 1000, no capabilities, no engine socket,
        // a host name of the target's own.
        let who = client()
            .get(format!("{app_url}who.txt"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lines: Vec<&str> = who.lines().collect();
        assert_eq!(lines.len(), 3, "{who}");
        assert_eq!(lines[0], "1000", "{who}");
        assert_eq!(lines[2], "CapEff:\t0000000000000000", "{who}");
        hosts.insert(lines[1].to_string());
    }
    assert_eq!(
        hosts.len(),
        2,
        "each target is a container of its own: {hosts:?}"
    );

    // A container that dies is started again and comes back online.
    let first = names.lines().next().unwrap().to_string();
    let out = podman.podman(&["kill", &first]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut running = false;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let st = podman.podman(&["inspect", "--format", "{{.State.Running}}", &first]);
        if String::from_utf8_lossy(&st.stdout).trim() == "true" {
            running = true;
            break;
        }
    }
    assert!(running, "the dead target's container was not started again");
    // The next deployment reaches it again, and both serve the new version.
    let mut files = files;
    files[5] = ("site/index.html", "<h1>boxed v2</h1>\n");
    let v2 = push_files(&server, &alice, "web", &files, &[]);
    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v2).await;
    let done = wait_done(&server, &alice, &d).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    assert_eq!(done["targets"].as_array().unwrap().len(), 2, "{done:#}");
    for _ in 0..4 {
        let r = client().get(&app_url).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "<h1>boxed v2</h1>\n");
    }
    drop(server);
    // Their containers go with the test.
    let ps = podman.podman(&["ps", "-aq", "--filter", "label=io.nubo.deploy-target"]);
    for id in String::from_utf8_lossy(&ps.stdout).split_whitespace() {
        let out = podman.rm(id);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
