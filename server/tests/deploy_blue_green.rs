//! Blue/green deployments of managed targets: green is installed and
//! health-checked beside blue, the app URL switches in one step, and
//! switches back when green fails after the switch — with a client
//! hammering the app URL all along and not one request failing.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const APPSPEC: &str = "version: 0.0
os: linux
files:
  - source: site
    destination: /srv/site
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/check.sh
  AfterAllowTraffic:
    - location: scripts/after.sh
  BeforeBlockTraffic:
    - location: scripts/note.sh
  AfterBlockTraffic:
    - location: scripts/note.sh
";
const NOTE: &str = "#!/bin/sh\necho \"$LIFECYCLE_EVENT on $(hostname)\"\n";

/// Hammers `url` from 4 clients until stopped: failed requests and the
/// bodies seen.
struct Hammer {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Hammer {
    fn start(url: &str) -> Hammer {
        let h = Hammer {
            stop: Arc::default(),
            failed: Arc::default(),
            total: Arc::default(),
            seen: Arc::default(),
            tasks: vec![],
        };
        let mut tasks = vec![];
        for _ in 0..4 {
            let (stop, failed, total, seen) = (
                h.stop.clone(),
                h.failed.clone(),
                h.total.clone(),
                h.seen.clone(),
            );
            let url = url.to_string();
            tasks.push(tokio::spawn(async move {
                let c = client();
                while !stop.load(Ordering::Relaxed) {
                    total.fetch_add(1, Ordering::Relaxed);
                    match c.get(&url).send().await {
                        Ok(r) if r.status() == 200 => {
                            let body = r.text().await.unwrap_or_default();
                            seen.lock().unwrap().insert(body);
                        }
                        Ok(r) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!(
                                "failed: {} {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            );
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("failed: {e}");
                        }
                    }
                }
            }));
        }
        Hammer { tasks, ..h }
    }

    async fn finish(self) -> (usize, usize, BTreeSet<String>) {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let seen = self.seen.lock().unwrap().clone();
        (
            self.failed.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
            seen,
        )
    }
}

fn events(target: &Value) -> Vec<(String, String)> {
    target["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// What the app URL answers now.
async fn served(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn page(v: &str) -> String {
    format!("<h1>shop {v}</h1>\n")
}

#[tokio::test]
async fn blue_green_switches_and_switches_back_without_a_failed_request() {
    let server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    create_repo(&server, &alice, "web").await;
    let push_version = |v: &str, after_exit: u8, health: bool| {
        let mut f = vec![
            ("appspec.yml".to_string(), APPSPEC.to_string()),
            ("scripts/start.sh".to_string(), APP_START.to_string()),
            ("scripts/stop.sh".to_string(), APP_STOP.to_string()),
            ("scripts/check.sh".to_string(), APP_CHECK.to_string()),
            ("scripts/note.sh".to_string(), NOTE.to_string()),
            (
                "scripts/after.sh".to_string(),
                format!("#!/bin/sh\necho after allow traffic\nexit {after_exit}\n"),
            ),
            ("site/index.html".to_string(), page(v)),
        ];
        if health {
            f.push(("site/health".to_string(), "ok\n".to_string()));
        }
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        push_files(&server, &alice, "web", &refs, &[])
    };
    let (s, a) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/applications",
        Some(json!({"name": "shop"})),
    )
    .await;
    assert_eq!(s, 201, "{a}");
    let (s, e) = api(
        &server,
        &alice,
        Method::POST,
        "/deploy/applications/shop/groups",
        Some(json!({"name": "web", "tags": {"env": "x"}, "blue_green": {}})),
    )
    .await;
    assert_eq!(s, 422, "blue/green needs managed targets: {e}");
    assert!(e["error"].to_string().contains("managed"), "{e}");
    let (s, g) = api(&server, &alice, Method::POST, "/deploy/applications/shop/groups", Some(json!({
        "name": "web", "managed": {"count": 1, "port": 8080},
        "blue_green": {"health_path": "/health", "health_timeout_seconds": 4, "drain_seconds": 1, "keep_blue_seconds": 60}
    }))).await;
    assert_eq!(s, 201, "{g}");
    assert_eq!(g["blue_green"]["health_path"], "/health", "{g}");
    let (_, group) = api(
        &server,
        &alice,
        Method::GET,
        "/deploy/applications/shop/groups/web",
        None,
    )
    .await;
    let url = group["app_url"].as_str().expect("an app URL").to_string();

    // The first deployment: green is side 0, nothing to switch away from.
    let v1 = push_version("v1", 0, true);
    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v1).await;
    let done = wait_done(&server, &alice, &d).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    assert_eq!(served(&url).await, page("v1"));

    // v2 onto the other side while the app URL is hammered.
    let v2 = push_version("v2", 0, true);
    let hammer = Hammer::start(&url);
    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v2).await;
    let done = wait_done(&server, &alice, &d).await;
    let (failed, total, seen) = hammer.finish().await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    assert_eq!(
        failed, 0,
        "{failed} of {total} requests failed during the switch"
    );
    assert!(
        seen.contains(&page("v1")) && seen.contains(&page("v2")),
        "{seen:?} in {total} requests"
    );
    assert_eq!(served(&url).await, page("v2"));
    let targets = done["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{done:#}");
    let green = targets
        .iter()
        .find(|t| t["name"] == "shop-web-1")
        .expect("green");
    let blue = targets
        .iter()
        .find(|t| t["name"] == "shop-web-0")
        .expect("blue");
    let names = |t: &Value| events(t).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
    assert_eq!(
        names(green),
        [
            "ApplicationStop",
            "DownloadBundle",
            "BeforeInstall",
            "Install",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
            "BeforeAllowTraffic",
            "AllowTraffic",
            "AfterAllowTraffic"
        ]
    );
    assert_eq!(
        names(blue),
        ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]
    );
    for t in [green, blue] {
        assert_eq!(t["status"], "Succeeded", "{t:#}");
        assert!(events(t).iter().all(|(_, s)| s == "Succeeded"), "{t:#}");
    }
    let before_block = &blue["events"][0];
    assert!(
        before_block["log_tail"]
            .as_str()
            .unwrap_or("")
            .contains("BeforeBlockTraffic on deploy-"),
        "blue ran its own (v1's) BeforeBlockTraffic: {before_block:#}"
    );

    // v3's AfterAllowTraffic fails after the switch: traffic goes back to v2.
    let v3 = push_version("v3", 1, true);
    let hammer = Hammer::start(&url);
    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v3).await;
    let done = wait_done(&server, &alice, &d).await;
    let (failed, total, seen) = hammer.finish().await;
    assert_eq!(done["status"], "Failed", "{done:#}");
    let message = done["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("AfterAllowTraffic failed on shop-web-0")
            && message.contains("switched back"),
        "{message}"
    );
    assert_eq!(
        failed, 0,
        "{failed} of {total} requests failed during the switch back"
    );
    assert!(seen.contains(&page("v2")), "{seen:?}");
    assert_eq!(served(&url).await, page("v2"));
    assert!(
        done["rolled_back_by"].is_null(),
        "switching back is the rollback: {done:#}"
    );

    // v4 never answers its health check: no switch at all.
    let v4 = push_version("v4", 0, false);
    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v4).await;
    let done = wait_done(&server, &alice, &d).await;
    assert_eq!(done["status"], "Failed", "{done:#}");
    let message = done["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("health check failed")
            && message.contains("/health")
            && message.contains("stayed"),
        "{message}"
    );
    assert_eq!(served(&url).await, page("v2"));

    // The next deployment works, onto the side that is not serving.
    let v5 = push_version("v5", 0, true);
    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v5).await;
    assert_eq!(wait_done(&server, &alice, &d).await["status"], "Succeeded");
    assert_eq!(served(&url).await, page("v5"));

    // The group's page says which side serves.
    let http = client();
    let login = http.get(server.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&login).unwrap();
    let csrf = csrf_from_page(&login.text().await.unwrap());
    let signed = http
        .post(server.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "alice"),
            ("password", "password-of-the-test"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = session_cookie(&signed).unwrap_or(cookie);
    let html = http
        .get(server.url("/deployments/shop/web"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Blue/green: serving side A (targets 0…)"),
        "{html}"
    );
    assert!(html.contains("GET /health with a 2xx within 4 s"), "{html}");
}
