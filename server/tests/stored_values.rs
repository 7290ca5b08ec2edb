//! The parameter store and secrets manager in the browser.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn administrators_manage_stored_values_in_the_browser() {
    let server = Server::start(&[]);
    let token = server.user_with_token("root2", true);
    let (cookie, csrf) = sign_in(&server, "root2", "password-of-the-test").await;
    let http = client();
    let r = http
        .post(server.url("/admin/stores/parameter"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "ci/token"),
            ("value", "very-secret-value"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // A refused name comes back as typed, the reason next to it; the value
    // never does, and nothing is stored.
    for (kind, name, value, field, status) in [
        ("secret", "bad name!", "the-secret-typed", "name", 422),
        (
            "parameter",
            "ci/big",
            &"x".repeat(70 * 1024)[..],
            "value",
            413,
        ),
    ] {
        let r = http
            .post(server.url(&format!("/admin/stores/{kind}")))
            .header("cookie", &cookie)
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("name", name),
                ("value", value),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{kind}");
        let html = r.text().await.unwrap();
        let section = &html[html.find(&format!("data-testid=\"{kind}\"")).unwrap()..];
        assert!(section.contains(&format!("value=\"{name}\"")), "{section}");
        assert!(
            section.contains(&format!("data-error-for=\"{field}\"")),
            "{section}"
        );
        assert!(!html.contains(&value[..16]), "a value was sent back");
    }
    let page = http
        .get(server.url("/admin/stores"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/ci/token") && !page.contains("very-secret-value"),
        "{page}"
    );
    let (_, list) = api(&server, &token, reqwest::Method::GET, "/parameters", None).await;
    assert_eq!(list[0]["name"], "/ci/token");
    // Without the CSRF token nothing changes; non-admins cannot see the page.
    let r = http
        .post(server.url("/admin/stores/parameter/delete"))
        .header("cookie", &cookie)
        .form(&[("name", "/ci/token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(server.url("/admin/stores/parameter/delete"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf.as_str()), ("name", "/ci/token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, list) = api(&server, &token, reqwest::Method::GET, "/parameters", None).await;
    assert_eq!(list, json!([]));
    server.user_with_token("plain", false);
    let (plain, _) = sign_in(&server, "plain", "password-of-the-test").await;
    let r = http
        .get(server.url("/admin/stores"))
        .header("cookie", &plain)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
