//! Attacks on the web layer that must fail: a cross-site write right after
//! sign-in, an open redirect through `next`, and reading `/metrics`
//! without its token.

mod common;

use common::{client, csrf_from_page, session_cookie, Server, METRICS_TOKEN};
use serde_json::{json, Value};

/// Signs in as a browser would, and loads no page afterwards: the session
/// has a user but nobody has been shown a page with its CSRF token.
async fn fresh_sign_in(server: &Server, user: &str, next: &str) -> (String, reqwest::Response) {
    let http = client();
    let page = http.get(server.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&page).unwrap();
    let csrf = csrf_from_page(&page.text().await.unwrap());
    let resp = http
        .post(server.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", user),
            ("password", "password-of-the-test"),
            ("next", next),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    (session_cookie(&resp).unwrap_or(cookie), resp)
}

#[tokio::test]
async fn a_cookie_alone_never_writes_through_the_api() {
    let server = Server::start(&[]);
    server.user_with_token("alice", false);
    let (cookie, _) = fresh_sign_in(&server, "alice", "/").await;
    let http = client();
    // What a cross-site page can make the browser send: the cookie, no token.
    for (path, body) in [
        ("/api/v1/me/git-credentials", json!({})),
        ("/api/v1/repos", json!({"name": "planted"})),
    ] {
        let r = http
            .post(server.url(path))
            .header("cookie", &cookie)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_failed", "{body}");
    }
    // Nothing was made; with the page's token the same write works.
    let page = http
        .get(server.url("/account"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csrf = csrf_from_page(&page.text().await.unwrap());
    let repos: Value = http
        .get(server.url("/api/v1/repos"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(repos.as_array().unwrap().len(), 0, "{repos}");
    let r = http
        .post(server.url("/api/v1/repos"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "wanted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn sign_in_never_redirects_off_site() {
    let server = Server::start(&[]);
    server.user_with_token("alice", false);
    for next in [
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "//evil.example",
        "/%2F/evil.example",
        "/\\evil.example",
    ] {
        let (_, resp) = fresh_sign_in(&server, "alice", next).await;
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert_eq!(location, "/", "next={next:?} led to {location:?}");
    }
    let (cookie, _) = fresh_sign_in(&server, "alice", "/").await;
    let r = client()
        .get(server.url("/login?next=/%09/evil.example"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    let (_, resp) = fresh_sign_in(&server, "alice", "/repos").await;
    assert_eq!(resp.headers()["location"], "/repos");
}

#[tokio::test]
async fn metrics_are_off_by_default_and_need_their_token() {
    let off = Server::start(&[]);
    let r = client().get(off.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap().contains("nubo_http_requests_total"));

    let on = Server::start(&[("NUBO_METRICS_TOKEN", METRICS_TOKEN)]);
    let admin = on.user_with_token("root", true);
    for auth in [None, Some("wrong-token-of-the-tests"), Some(admin.as_str())] {
        let mut req = client().get(on.url("/metrics"));
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(r.headers().contains_key("www-authenticate"));
    }
    let r = client()
        .get(on.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("nubo_users 2"));
}
