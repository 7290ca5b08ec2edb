//! The users page's actions are for administrators only, and a reset link
//! is refused once used or when made up.

mod common;

use common::{client, sign_in, Server};

async fn post(
    server: &Server,
    session: &(String, String),
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut form = vec![("csrf_token", session.1.as_str())];
    form.extend_from_slice(fields);
    let r = client()
        .post(server.url(path))
        .header("cookie", &session.0)
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn only_administrators_change_users_and_a_reset_code_works_once() {
    let server = Server::start(&[]);
    server.user_with_token("root", true);
    server.user_with_token("mallory", false);
    server.user_with_token("erin", false);
    let root = sign_in(&server, "root", "password-of-the-test").await;
    let mallory = sign_in(&server, "mallory", "password-of-the-test").await;

    for path in [
        "/admin/users/mallory/make-admin",
        "/admin/users/erin/reset-link",
        "/admin/users/erin/disable",
    ] {
        assert_eq!(post(&server, &mallory, path, &[]).await.0, 403, "{path}");
    }
    assert_eq!(
        post(&server, &mallory, "/admin/groups", &[("group", "g")])
            .await
            .0,
        403
    );
    // An administrator cannot demote themselves.
    let (status, _) = post(&server, &root, "/admin/users/root/remove-admin", &[]).await;
    assert_eq!(status, 303);
    let (_, html) = post(&server, &root, "/admin/users/erin/reset-link", &[]).await;
    assert!(
        html.contains("<td data-testid=\"role\">admin</td>"),
        "root is still an administrator"
    );

    let code = html
        .split("/reset-password#")
        .nth(1)
        .map(|rest| rest[..48].to_string())
        .expect("a reset link");
    // A made-up code, then the real one twice: it works once.
    let anon = {
        let r = client()
            .get(server.url("/reset-password"))
            .send()
            .await
            .unwrap();
        let cookie = common::session_cookie(&r).unwrap();
        (cookie, common::csrf_from_page(&r.text().await.unwrap()))
    };
    let reset = |code: String| {
        let (server, anon) = (&server, &anon);
        async move {
            post(
                server,
                anon,
                "/reset-password",
                &[
                    ("code", code.as_str()),
                    ("new_password", "erin-new-password"),
                    ("confirm_password", "erin-new-password"),
                ],
            )
            .await
        }
    };
    let (status, html) = reset("0".repeat(48)).await;
    assert_eq!(status, 422);
    assert!(html.contains("does not work"), "{html}");
    assert_eq!(reset(code.clone()).await.0, 303);
    assert_eq!(reset(code).await.0, 422);
    sign_in(&server, "erin", "erin-new-password").await;
}
