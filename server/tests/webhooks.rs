//! Repository triggers: signed webhook deliveries on push, branch filters,
//! retries with backoff and the delivery history.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::{client, create_repo, git, ok, sign_in, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver that fails its first request and accepts the rest.
async fn receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let mut list = sink.lock().unwrap();
                list.push((headers, body));
                if list.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..150 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn pushes_trigger_signed_retried_webhooks() {
    let server = Server::start(&[
        ("NUBO_WEBHOOK_RETRY_BASE_MS", "100"),
        ("NUBO_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "hooked").await;
    let (url, got) = receiver().await;
    let http = client();
    let secret = "a-shared-secret-for-tests";

    for bad in [
        json!({"url": "ftp://x"}),
        json!({"url": url, "events": ["everything"]}),
        json!({"url": url, "secret": "short"}),
    ] {
        let r = http
            .post(server.url("/api/v1/repos/hooked/webhooks"))
            .bearer_auth(&token)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{bad}");
    }
    let r = http
        .post(server.url("/api/v1/repos/hooked/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": url, "secret": secret, "branches": ["main"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    let hook_id = hook["id"].as_str().unwrap().to_string();
    // A second hook to a closed port: it must end as failed, after retries.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/gone", l.local_addr().unwrap())
    };
    let r = http
        .post(server.url("/api/v1/repos/hooked/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": dead}))
        .send()
        .await
        .unwrap();
    let dead_hook: Value = r.json().await.unwrap();
    assert!(
        dead_hook["secret"].as_str().unwrap().len() >= 32,
        "a secret is generated"
    );

    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "work"]));
    let work = w.join("work");
    std::fs::write(work.join("f"), "1\n").unwrap();
    ok(git(&work, "x", "x", &["add", "."]));
    ok(git(&work, "x", "x", &["commit", "-qm", "one"]));
    let repo_url = server.url("/v1/repos/hooked");
    ok(git(
        &work,
        "alice",
        &token,
        &["push", "-q", &repo_url, "HEAD:refs/heads/feature"],
    ));
    ok(git(
        &work,
        "alice",
        &token,
        &["push", "-q", &repo_url, "HEAD:refs/heads/main"],
    ));
    let head = ok(git(&work, "x", "x", &["rev-parse", "HEAD"]))
        .trim()
        .to_string();

    wait_for("the retried delivery", || got.lock().unwrap().len() >= 2).await;
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "the feature branch was filtered out");
    for (headers, body) in &received {
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["ref"], "refs/heads/main");
        assert_eq!(payload["event"], "createReference");
        assert_eq!(payload["new"], head.as_str());
        assert_eq!(payload["pusher"], "alice");
        assert_eq!(payload["repository"], "hooked");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(headers["x-nubo-signature-256"], expected.as_str());
        assert_eq!(headers["x-nubo-event"], "createReference");
    }
    assert_eq!(
        received[0].0["x-nubo-delivery"], received[1].0["x-nubo-delivery"],
        "a retry is the same delivery"
    );

    let deliveries_of = |id: String| {
        let http = http.clone();
        let url = server.url(&format!("/api/v1/repos/hooked/webhooks/{id}/deliveries"));
        let token = token.clone();
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let mut history = Value::Null;
    for _ in 0..50 {
        history = deliveries_of(hook_id.clone()).await;
        if history[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(history[0]["state"], "delivered", "{history}");
    assert_eq!(history[0]["attempts"], 2);
    assert_eq!(history[0]["last_status"], 200);

    let dead_id = dead_hook["id"].as_str().unwrap().to_string();
    let mut dead_history = Value::Null;
    for _ in 0..100 {
        dead_history = deliveries_of(dead_id.clone()).await;
        if dead_history
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|d| d["state"] == "failed"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead_list = dead_history.as_array().unwrap();
    assert_eq!(
        dead_list.len(),
        2,
        "both pushes went to the unfiltered hook: {dead_history}"
    );
    for d in dead_list {
        assert_eq!(d["state"], "failed", "{dead_history}");
        assert_eq!(d["attempts"], 6);
        assert_eq!(d["last_error"], "connection failed");
    }

    // The secret is not stored in the clear.
    let db = std::fs::read(server.data_dir.join("nubo.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("nubo.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(secret.len()).any(|x| x == secret.as_bytes()));
    }
    let r = http
        .delete(server.url(&format!("/api/v1/repos/hooked/webhooks/{hook_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn webhooks_are_managed_and_visible_on_the_repository_page() {
    let server = Server::start(&[
        ("NUBO_WEBHOOK_RETRY_BASE_MS", "100"),
        ("NUBO_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "paged").await;
    let (url, got) = receiver().await;
    let (cookie, csrf) = sign_in(&server, "alice", "password-of-the-test").await;
    let http = client();
    let r = http
        .post(server.url("/repos/paged/webhooks"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("url", url.as_str()),
            ("secret", "page-secret-0123456789"),
            ("branches", "main"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "work"]));
    std::fs::write(w.join("work").join("f"), "1\n").unwrap();
    ok(git(&w.join("work"), "x", "x", &["add", "."]));
    ok(git(&w.join("work"), "x", "x", &["commit", "-qm", "one"]));
    ok(git(
        &w.join("work"),
        "alice",
        &token,
        &["push", "-q", &server.url("/v1/repos/paged"), "HEAD:main"],
    ));
    wait_for("delivery", || got.lock().unwrap().len() >= 2).await;
    let mut html = String::new();
    for _ in 0..50 {
        html = http
            .get(server.url("/repos/paged/settings"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if html.contains("delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(html.contains(&format!("data-webhook=\"{url}\"")), "{html}");
    assert!(
        html.contains("delivered") && html.contains("after 2 attempt(s)"),
        "{html}"
    );
    assert!(!html.contains("page-secret-0123456789"));
}

/// Pushes one commit to `main` of `repo`.
fn push_one(server: &Server, token: &str, repo: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "work"]));
    std::fs::write(w.join("work").join("f"), "1\n").unwrap();
    ok(git(&w.join("work"), "x", "x", &["add", "."]));
    ok(git(&w.join("work"), "x", "x", &["commit", "-qm", "one"]));
    ok(git(
        &w.join("work"),
        "alice",
        token,
        &[
            "push",
            "-q",
            &server.url(&format!("/v1/repos/{repo}")),
            "HEAD:main",
        ],
    ));
}

async fn first_delivery(server: &Server, token: &str, repo: &str, hook: &str) -> Value {
    let mut history = Value::Null;
    for _ in 0..100 {
        history = client()
            .get(server.url(&format!("/api/v1/repos/{repo}/webhooks/{hook}/deliveries")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if history[0]["attempts"].as_i64().is_some_and(|n| n > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    history[0].clone()
}

#[tokio::test]
async fn webhooks_cannot_reach_inner_addresses_or_follow_redirects() {
    // By default only public addresses: an address literal is refused when
    // the hook is saved, a name that resolves to loopback when it is sent.
    let server = Server::start(&[("NUBO_WEBHOOK_RETRY_BASE_MS", "100")]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "inner").await;
    let (url, got) = receiver().await;
    let http = client();
    for literal in [
        url.clone(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[::1]:9/x".to_string(),
        "http://10.0.0.1/x".to_string(),
    ] {
        let r = http
            .post(server.url("/api/v1/repos/inner/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": literal}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{literal}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("webhook_allowed_networks"),
            "{body}"
        );
    }
    let by_name = url.replace("127.0.0.1", "localhost");
    let r = http
        .post(server.url("/api/v1/repos/inner/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": by_name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    push_one(&server, &token, "inner");
    let d = first_delivery(&server, &token, "inner", hook["id"].as_str().unwrap()).await;
    let error = d["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("refused to connect") && error.contains("loopback"),
        "{d}"
    );
    assert!(got.lock().unwrap().is_empty(), "the receiver was reached");

    // An allowed network is reachable, but a redirect is never followed.
    let server = Server::start(&[
        ("NUBO_WEBHOOK_RETRY_BASE_MS", "100"),
        ("NUBO_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ]);
    let token = server.user_with_token("alice", false);
    create_repo(&server, &token, "redirected").await;
    let (target, target_got) = receiver().await;
    let hits: Received = Arc::default();
    let sink = hits.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (sink, target) = (sink.clone(), target.clone());
            async move {
                sink.lock().unwrap().push((headers, body));
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, target)],
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirector = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let r = http
        .post(server.url("/api/v1/repos/redirected/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": redirector}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook: Value = r.json().await.unwrap();
    push_one(&server, &token, "redirected");
    let d = first_delivery(&server, &token, "redirected", hook["id"].as_str().unwrap()).await;
    assert_eq!(d["last_status"], 307, "{d}");
    assert!(!hits.lock().unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        target_got.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
}
