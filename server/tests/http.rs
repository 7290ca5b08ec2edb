//! HTTP behaviour of the real `nubo` binary: health, metrics and the first
//! start, API tokens, error shapes, limits, the OpenAPI document, pages and
//! JSON logs (sessions and CSRF are in sign_in.rs).

mod common;

use common::{client, error_code, sign_in, Server, METRICS_TOKEN};
use serde_json::{json, Value};

#[tokio::test]
async fn health_metrics_and_first_start_admin() {
    let server = Server::start(&[("NUBO_METRICS_TOKEN", METRICS_TOKEN)]);
    let http = client();
    let r = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let password = server
        .admin_password
        .clone()
        .expect("first start prints a password");
    let (cookie, _) = sign_in(&server, "admin", &password).await;
    let me: Value = http
        .get(server.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "admin");
    assert_eq!(me["admin"], true);
    assert_eq!(me["must_change_password"], true);
    let metrics = http
        .get(server.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "nubo_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("nubo_users 1"));
    // The one-time password is printed to stdout, never into the logs.
    assert!(!server.stderr.lock().unwrap().contains(&password));
}

#[tokio::test]
async fn admin_password_is_printed_only_on_the_first_start() {
    let mut first = Server::start(&[]);
    let password = first.admin_password.clone().unwrap();
    first.kill();
    let dir = first.data_dir.clone();
    let second = Server::start_in(&dir, &[], &[]);
    assert!(second.admin_password.is_none());
    assert!(!second.stdout.lock().unwrap().contains("password"));
    sign_in(&second, "admin", &password).await;
}

#[tokio::test]
async fn bearer_tokens_authenticate_and_revoked_ones_do_not() {
    let server = Server::start(&[]);
    let token = server.user_with_token("alice", false);
    let http = client();

    let r = http.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));

    let me: Value = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "alice");
    assert_eq!(me["admin"], false);
    assert_eq!(me["auth"], "token");

    for bad in ["nubo_0000", "not-a-token", ""] {
        let r = http
            .get(server.url("/api/v1/me"))
            .header("authorization", format!("Bearer {bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "token {bad:?}");
    }

    // A second token, created through the API, then revoked through it.
    let created: Value = http
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(&token)
        .json(&json!({"description": "short-lived"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    let listed: Value = http
        .get(server.url("/api/v1/tokens"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|t| t.get("token").is_none() && t.get("token_hash").is_none()));
    assert!(listed
        .iter()
        .any(|t| t["description"] == "tests" && t["last_used_at"].is_string()));

    let r = http
        .delete(server.url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "unauthorized".into()));
    // Revoking again, or someone else's token, is a 404.
    let r = http
        .delete(server.url(&format!("/api/v1/tokens/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));

    // Only a hash is stored.
    let db = std::fs::read(server.data_dir.join("nubo.db")).unwrap();
    let wal = std::fs::read(server.data_dir.join("nubo.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_changes_nothing() {
    let server = Server::start(&[("NUBO_MAX_BODY_BYTES", "4096")]);
    let admin = server.user_with_token("root2", true);
    let user = server.user_with_token("carol", false);
    let http = client();
    let post_users = |token: &str, body: String| {
        http.post(server.url("/api/v1/users"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (
            "{\"name\": \"dave\", \"password\":".into(),
            400,
            "bad_request",
        ),
        (
            "{\"name\": 5, \"password\": \"long-enough-pw\"}".into(),
            422,
            "validation_failed",
        ),
        (
            "{\"name\": \"dave\", \"password\": \"long-enough-pw\", \"root\": true}".into(),
            422,
            "validation_failed",
        ),
        (
            "{\"name\": \"../x\", \"password\": \"long-enough-pw\"}".into(),
            422,
            "validation_failed",
        ),
        (
            "{\"name\": \"a\\u0000b\", \"password\": \"long-enough-pw\"}".into(),
            422,
            "validation_failed",
        ),
        (
            "{\"name\": \"dave\", \"password\": \"short\"}".into(),
            422,
            "validation_failed",
        ),
        (
            "{\"name\": \"CAROL\", \"password\": \"long-enough-pw\"}".into(),
            409,
            "conflict",
        ),
        (
            format!(
                "{{\"name\": \"dave\", \"password\": \"{}\"}}",
                "x".repeat(5000)
            ),
            413,
            "payload_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let r = post_users(&admin, body.clone()).await.unwrap();
        assert_eq!(
            error_code(r).await,
            (status, code.to_string()),
            "body {body:.80}"
        );
    }
    let r = post_users(
        &user,
        "{\"name\": \"dave\", \"password\": \"long-enough-pw\"}".into(),
    )
    .await
    .unwrap();
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = http
        .post(server.url("/api/v1/users"))
        .bearer_auth(&admin)
        .body("name=dave")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (415, "unsupported_media_type".into()));
    let r = http
        .get(server.url("/api/v1/nothing-here"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));
    let r = http
        .get(server.url("/api/v1/users/nobody"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "not_found".into()));

    let users: Value = http
        .get(server.url("/api/v1/users"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "carol", "root2"]);

    // And the valid request works.
    let r = post_users(
        &admin,
        "{\"name\": \"dave\", \"password\": \"long-enough-pw\"}".into(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["name"], "dave");
    assert!(created.get("password_hash").is_none() && created.get("id").is_none());
}

#[tokio::test]
async fn openapi_documents_every_route_and_only_real_ones() {
    let server = Server::start(&[]);
    let token = server.user_with_token("root2", true);
    let http = client();
    let doc: Value = http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/openapi.json",
    ] {
        assert!(
            paths.contains_key(expected),
            "{expected} missing from the OpenAPI document"
        );
    }
    // Every documented operation exists on the server (no 404/405).
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url = server.url(&path.replace("{id}", "x").replace("{name}", "root2"));
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = http
                .request(m, &url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            assert!(
                status != 405 && !body.contains("no API route"),
                "{method} {path}: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn pages_need_a_session_and_render_for_one() {
    let server = Server::start(&[]);
    let http = client();
    let r = http.get(server.url("/repos")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=/repos");
    let password = server.admin_password.clone().unwrap();
    let (cookie, _) = sign_in(&server, "admin", &password).await;
    for (path, text) in [
        ("/", "Welcome, admin"),
        ("/repos", "No repositories yet"),
        ("/workspaces", "No workspaces yet"),
        ("/pipelines", "No pipelines yet"),
        ("/deployments", "No applications yet"),
        ("/admin/users", "Create a user"),
        ("/account/tokens", "Create a token"),
    ] {
        let r = http
            .get(server.url(path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(html.contains(text), "{path} lacks {text:?}");
        assert!(
            html.contains("one-time password"),
            "{path} lacks the password banner"
        );
    }
    let r = http.get(server.url("/assets/app.js")).send().await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    assert!(r.headers().get("content-encoding").is_none());
    let plain = r.bytes().await.unwrap();
    // Pages link assets with this build's digest: those are kept for good,
    // and come gzip-compressed to a browser that takes it.
    let page = http.get(server.url("/login")).send().await.unwrap();
    let html = page.text().await.unwrap();
    let at = html
        .find("/assets/app.js?v=")
        .expect("app.js linked with its digest");
    let url = &html[at..at + "/assets/app.js?v=".len() + 16];
    let r = http
        .get(server.url(url))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "accept-encoding");
    let gz = r.bytes().await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(
        gz.len() * 2 < plain.len(),
        "{} vs {}",
        gz.len(),
        plain.len()
    );
    let r = http
        .get(server.url("/assets/..%2F..%2FCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn admin_manages_users_through_the_pages() {
    let server = Server::start(&[]);
    let password = server.admin_password.clone().unwrap();
    let (cookie, csrf) = sign_in(&server, "admin", &password).await;
    let http = client();
    let r = http
        .post(server.url("/admin/users"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "erin"),
            ("password", "erins-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = http
        .get(server.url("/admin/users"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Created erin."), "{html}");
    assert!(html.contains("data-user=\"erin\""));
    let r = http
        .post(server.url("/admin/users/erin/disable"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let out = server.cli(&["user", "list", "--json"], None);
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    let erin = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "erin")
        .unwrap();
    assert_eq!(erin["disabled"], true);
    assert_eq!(erin["must_change_password"], true);

    // Changing one's own password: wrong current password changes nothing.
    let change = |current: &str, new: &str| {
        http.post(server.url("/account/password"))
            .header("cookie", &cookie)
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", new),
            ])
            .send()
    };
    // The refusal comes back at once, next to the current password.
    let refused = change("wrong", "brand-new-password").await.unwrap();
    assert_eq!(refused.status(), 403);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains(r#"data-error-for="current_password" class="field-error">The current password is wrong."#),
        "{html}"
    );
    change(&password, "brand-new-password").await.unwrap();
    let html = http
        .get(server.url("/account"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Your password was changed."));
    assert!(!html.contains("one-time password"));
    sign_in(&server, "admin", "brand-new-password").await;
}

#[tokio::test]
async fn json_logs_are_json_and_hold_no_secrets() {
    let server = Server::start(&[("NUBO_LOG_FORMAT", "json"), ("NUBO_LOG_LEVEL", "debug")]);
    let token = server.user_with_token("frank", false);
    let http = client();
    let r = http
        .get(server.url("/api/v1/me?secret=hunter2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let password = server.admin_password.clone().unwrap();
    sign_in(&server, "admin", &password).await;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = server.stderr.lock().unwrap().clone();
    assert!(logs.lines().count() > 2, "{logs}");
    for line in logs.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string());
    }
    for secret in [
        token.as_str(),
        password.as_str(),
        "hunter2",
        "password-of-the-test",
    ] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    assert!(logs.contains("signed in"));
}

#[tokio::test]
async fn text_logs_to_a_pipe_are_plain() {
    // The server's stderr is a pipe here, as under systemd or `> file`.
    let server = Server::start(&[("NUBO_LOG_FORMAT", "text")]);
    let r = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = server.stderr.lock().unwrap().clone();
    assert!(logs.contains("INFO"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in a piped log: {logs:?}"
    );
}
