//! Browser sessions: sign-in and its throttling, rotation and expiry of
//! the session, disabled accounts, CSRF on cookie writes, Secure cookies.

mod common;

use common::{client, csrf_from_page, error_code, session_cookie, sign_in, Server};
use serde_json::{json, Value};

#[tokio::test]
async fn cookie_writes_need_the_csrf_token() {
    let server = Server::start(&[]);
    let password = server.admin_password.clone().unwrap();
    let http = client();

    // A sign-in form post without a session or token is refused.
    let r = http
        .post(server.url("/login"))
        .form(&[("username", "admin"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // With a session but a wrong token: refused too.
    let page = http.get(server.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&page).unwrap();
    let r = http
        .post(server.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", "forged"),
            ("username", "admin"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (cookie, csrf) = sign_in(&server, "admin", &password).await;
    let r = http
        .post(server.url("/api/v1/tokens"))
        .header("cookie", &cookie)
        .json(&json!({"description": "from the browser"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (403, "csrf_failed".into()));
    let r = http
        .post(server.url("/account/tokens"))
        .header("cookie", &cookie)
        .form(&[("description", "no token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = http
        .post(server.url("/api/v1/tokens"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"description": "from the browser"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = http
        .post(server.url("/account/tokens"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str()), ("description", "via form")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("data-testid=\"new-token\">nubo_"), "{page}");
    // Nothing from the refused requests was created.
    let tokens: Value = http
        .get(server.url("/api/v1/tokens"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let descriptions: Vec<_> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["description"].clone())
        .collect();
    assert_eq!(descriptions.len(), 2, "{descriptions:?}");
    assert!(!descriptions.contains(&json!("no token")));
}

#[tokio::test]
async fn session_is_rotated_on_sign_in_and_dead_after_sign_out() {
    let server = Server::start(&[]);
    let password = server.admin_password.clone().unwrap();
    let http = client();
    let page = http.get(server.url("/login")).send().await.unwrap();
    let pre = session_cookie(&page).unwrap();
    let csrf = csrf_from_page(&page.text().await.unwrap());
    let r = http
        .post(server.url("/login"))
        .header("cookie", &pre)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "admin"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let post = session_cookie(&r).expect("a new session id is issued at sign-in");
    assert_ne!(pre, post);
    // The pre-sign-in id is not signed in.
    let r = http
        .get(server.url("/api/v1/me"))
        .header("cookie", &pre)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(server.url("/api/v1/me"))
        .header("cookie", &post)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Forged cookies are strangers.
    for forged in ["nubo_session=AAAAAAAAAAAAAAAAAAAAAA", "nubo_session=%%%"] {
        let r = http
            .get(server.url("/api/v1/me"))
            .header("cookie", forged)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = http
            .get(server.url("/"))
            .header("cookie", forged)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(r.headers()["location"], "/login");
    }

    // Signing out ends the session on the server; replaying the cookie fails.
    let account = http
        .get(server.url("/account"))
        .header("cookie", &post)
        .send()
        .await
        .unwrap();
    let csrf = csrf_from_page(&account.text().await.unwrap());
    let r = http
        .post(server.url("/logout"))
        .header("cookie", &post)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(server.url("/api/v1/me"))
        .header("cookie", &post)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn sign_in_is_throttled_per_account() {
    let server = Server::start(&[("NUBO_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]);
    let password = server.admin_password.clone().unwrap();
    let http = client();
    let page = http.get(server.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&page).unwrap();
    let csrf = csrf_from_page(&page.text().await.unwrap());
    let attempt = |pw: String| {
        http.post(server.url("/login"))
            .header("cookie", &cookie)
            .form(&[
                ("csrf_token", csrf.clone()),
                ("username", "admin".into()),
                ("password", pw),
            ])
            .send()
    };
    for _ in 0..3 {
        let r = attempt("wrong-password".into()).await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Wrong user name or password."));
    }
    // Even the right password waits now.
    let r = attempt(password.clone()).await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 300);
    assert!(r.text().await.unwrap().contains("Too many failed sign-ins"));
}

#[tokio::test]
async fn sign_in_is_throttled_per_address() {
    let server = Server::start(&[("NUBO_LOGIN_MAX_FAILURES_PER_ADDRESS", "4")]);
    let password = server.admin_password.clone().unwrap();
    let http = client();
    let page = http.get(server.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&page).unwrap();
    let csrf = csrf_from_page(&page.text().await.unwrap());
    for i in 0..4 {
        let r = http
            .post(server.url("/login"))
            .header("cookie", &cookie)
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("username", &format!("nobody{i}")),
                ("password", "x"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = http
        .post(server.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "admin"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

#[tokio::test]
async fn disabled_users_are_locked_out_until_enabled() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root2", true);
    let bob = server.user_with_token("bob", false);
    let http = client();
    let (bob_cookie, _) = sign_in(&server, "bob", "password-of-the-test").await;

    // Non-admins cannot disable anyone.
    let r = http
        .patch(server.url("/api/v1/users/root2"))
        .bearer_auth(&bob)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (403, "forbidden".into()));

    let r = http
        .patch(server.url("/api/v1/users/bob"))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (403, "forbidden".into()));
    let r = http
        .get(server.url("/api/v1/me"))
        .header("cookie", &bob_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the open session ended");

    let page = http.get(server.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&page).unwrap();
    let csrf = csrf_from_page(&page.text().await.unwrap());
    let r = http
        .post(server.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "bob"),
            ("password", "password-of-the-test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("This account is disabled"));

    // Admins cannot lock themselves out.
    let r = http
        .patch(server.url("/api/v1/users/root2"))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    let out = server.cli(&["user", "enable", "bob"], None);
    assert!(out.status.success());
    let r = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let server = Server::start(&[]);
    let password = server.admin_password.clone().unwrap();
    let (cookie, _) = sign_in(&server, "admin", &password).await;
    let http = client();
    let r = http
        .get(server.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Age every stored session past its expiry, as time would.
    let out = std::process::Command::new("sqlite3")
        .arg(server.data_dir.join("nubo.db"))
        .arg("UPDATE tower_sessions SET expiry_date = 1;")
        .output()
        .expect("sqlite3 is installed by scripts/setup.sh --test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = http
        .get(server.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(server.url("/account"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn https_public_url_makes_the_cookie_secure() {
    let server = Server::start(&[("NUBO_PUBLIC_URL", "https://nubo.example.org")]);
    let r = client().get(server.url("/login")).send().await.unwrap();
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(set.contains("Secure") && set.contains("HttpOnly"), "{set}");
}

#[tokio::test]
async fn an_authorization_header_does_not_lift_csrf_on_pages() {
    let server = Server::start(&[]);
    let password = server.admin_password.clone().unwrap();
    let (cookie, _) = sign_in(&server, "admin", &password).await;
    let r = client()
        .post(server.url("/account/tokens"))
        .header("cookie", &cookie)
        .header("authorization", "Bearer nubo_whatever")
        .form(&[("description", "sneaky")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
