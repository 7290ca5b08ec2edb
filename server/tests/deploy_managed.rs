//! Managed targets: a group's targets started by Nubo itself (local
//! sandboxes on the embedded default), and the app URL on the preview
//! origin serving the revision they run.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn managed_targets_serve_the_deployed_revision_at_the_app_url() {
    let server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    create_repo(&server, &alice, "web").await;
    let files = |v: &str| {
        vec![
            ("appspec.yml".to_string(), MANAGED_APPSPEC.to_string()),
            ("scripts/start.sh".to_string(), APP_START.to_string()),
            ("scripts/stop.sh".to_string(), APP_STOP.to_string()),
            ("scripts/check.sh".to_string(), APP_CHECK.to_string()),
            (
                "site/index.html".to_string(),
                format!("<h1>shop {v}</h1>\n"),
            ),
        ]
    };
    let push_version = |v: &str| {
        let f = files(v);
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        push_files(&server, &alice, "web", &refs, &[])
    };
    let v1 = push_version("v1");
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
        Some(json!({"name": "web", "managed": {"count": 2, "port": 8080}, "tags": {"env": "x"}})),
    )
    .await;
    assert_eq!(s, 422, "managed groups choose their own targets: {e}");
    let (s, g) = api(&server, &alice, Method::POST, "/deploy/applications/shop/groups", Some(json!({"name": "web", "config": "CodeDeployDefault.AllAtOnce", "managed": {"count": 2, "port": 8080}}))).await;
    assert_eq!(s, 201, "{g}");
    // Nubo starts them; they enroll as alice's and show up online.
    let targets = wait_online(&server, &alice, 2).await;
    let names: Vec<&str> = targets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop-web-0", "shop-web-1"], "{targets:#}");
    let (_, group) = api(
        &server,
        &alice,
        Method::GET,
        "/deploy/applications/shop/groups/web",
        None,
    )
    .await;
    let app_url = group["app_url"].as_str().expect("an app URL").to_string();
    assert!(app_url.ends_with("/apps/shop/web/"), "{app_url}");
    assert!(
        !app_url.starts_with(&server.base),
        "never on Nubo's own origin: {app_url}"
    );
    let before = client().get(&app_url).send().await.unwrap();
    assert_eq!(before.status(), 502, "nothing deployed yet");

    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v1).await;
    let done = wait_done(&server, &alice, &d).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    let mut served_by = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let r = client().get(&app_url).send().await.unwrap();
        if r.status() != 200 {
            panic!("{}: {}", r.status(), r.text().await.unwrap());
        }
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.starts_with("sandbox"), "{csp}");
        served_by.insert(r.headers()["x-nubo-target"].to_str().unwrap().to_string());
        assert_eq!(r.text().await.unwrap(), "<h1>shop v1</h1>\n");
    }
    assert_eq!(served_by.len(), 2, "both targets serve, in turn");

    let v2 = push_version("v2");
    let d = deploy_commit(&server, &alice, "shop", "web", "web", &v2).await;
    assert_eq!(wait_done(&server, &alice, &d).await["status"], "Succeeded");
    let r = client()
        .get(format!("{app_url}index.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "<h1>shop v2</h1>\n");
    let r = client()
        .get(app_url.trim_end_matches('/'))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        308,
        "the address without its slash is redirected"
    );
    assert_eq!(r.headers()["location"], "/apps/shop/web/");
    let (s, _) = api(
        &server,
        &alice,
        Method::GET,
        "/deploy/applications/nope",
        None,
    )
    .await;
    assert_eq!(s, 404);
    let r = client()
        .get(app_url.replace("/shop/web/", "/shop/nope/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
