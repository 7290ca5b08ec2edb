//! Sharing a repository from its Access tab: only those who may manage it
//! can share, what they write stays inside the repository, and deleting
//! the repository takes the access with it.

mod common;

use common::{api, client, create_repo, sign_in, Server};
use reqwest::Method;

/// Posts a form as a signed-in user; answers the status.
async fn post(
    server: &Server,
    session: &(String, String),
    path: &str,
    fields: &[(&str, &str)],
) -> u16 {
    let mut form = vec![("csrf_token", session.1.as_str())];
    form.extend_from_slice(fields);
    client()
        .post(server.url(path))
        .header("cookie", &session.0)
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn access_is_given_by_managers_only_scoped_to_the_repository_and_gone_with_it() {
    let server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    let bob = server.user_with_token("bob", false);
    let carol = server.user_with_token("carol", false);
    create_repo(&server, &alice, "proj").await;
    let (a, b) = (
        sign_in(&server, "alice", "password-of-the-test").await,
        sign_in(&server, "bob", "password-of-the-test").await,
    );
    let read = |token: String| {
        let server = &server;
        async move {
            api(server, &token, Method::GET, "/repos/proj", None)
                .await
                .0
        }
    };

    // Bob may not share what he cannot manage, and nothing changes.
    let share_bob = [("kind", "user"), ("principal", "bob"), ("level", "admin")];
    assert_eq!(
        post(&server, &b, "/repos/proj/access", &share_bob).await,
        403
    );
    assert_eq!(read(bob.clone()).await, 403);

    // The creator makes bob an admin of it; bob can then share it on.
    assert_eq!(
        post(&server, &a, "/repos/proj/access", &share_bob).await,
        303
    );
    assert_eq!(read(bob.clone()).await, 200);
    let share_carol = [("kind", "user"), ("principal", "carol"), ("level", "read")];
    assert_eq!(
        post(&server, &b, "/repos/proj/access", &share_carol).await,
        303
    );
    assert_eq!(read(carol.clone()).await, 200);

    // Unknown people, levels and branch names are refused in words.
    for (fields, words) in [
        (
            vec![("kind", "user"), ("principal", "nobody"), ("level", "read")],
            "no user named",
        ),
        (
            vec![("kind", "user"), ("principal", "carol"), ("level", "owner")],
            "is not a level",
        ),
        (
            vec![("kind", "team"), ("principal", "carol"), ("level", "read")],
            "not a kind of principal",
        ),
        (
            vec![
                ("kind", "user"),
                ("principal", "carol"),
                ("level", "write"),
                ("branches", "../x"),
            ],
            "is not a branch name",
        ),
    ] {
        let mut form = vec![("csrf_token", b.1.as_str())];
        form.extend_from_slice(&fields);
        let r = client()
            .post(server.url("/repos/proj/access"))
            .header("cookie", &b.0)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{fields:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains(words), "{words}: {html}");
    }

    // Nothing takes the creator's own access away: no grant to them, and
    // no Deny on a group they are in.
    let to_alice = [("kind", "user"), ("principal", "alice"), ("level", "read")];
    assert_eq!(
        post(&server, &b, "/repos/proj/access", &to_alice).await,
        422
    );
    let root = server.user_with_token("root", true);
    assert_eq!(
        api(
            &server,
            &root,
            Method::POST,
            "/groups",
            Some(serde_json::json!({"name": "team"}))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        api(
            &server,
            &root,
            Method::PUT,
            "/groups/team/members/alice",
            None
        )
        .await
        .0 / 100,
        2
    );
    let to_team = [
        ("kind", "group"),
        ("principal", "team"),
        ("level", "write"),
        ("branches", "main"),
    ];
    assert_eq!(post(&server, &b, "/repos/proj/access", &to_team).await, 303);
    let deny = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "codecommit:*", "Resource": "arn:nubo:codecommit:::proj"}]}"#;
    let edit = [
        ("edit_kind", "group"),
        ("edit_principal", "team"),
        ("document", deny),
    ];
    assert_eq!(
        post(&server, &b, "/repos/proj/access/policy", &edit).await,
        422
    );
    assert_eq!(
        read(alice.clone()).await,
        200,
        "the creator keeps her repository"
    );

    // A policy edited to reach anything else is refused; carol's stays read.
    let wide = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}"#;
    let edit = [
        ("edit_kind", "user"),
        ("edit_principal", "carol"),
        ("document", wide),
    ];
    assert_eq!(
        post(&server, &b, "/repos/proj/access/policy", &edit).await,
        422
    );
    create_repo(&server, &alice, "other").await;
    assert_eq!(
        api(&server, &carol, Method::GET, "/repos/other", None)
            .await
            .0,
        403
    );
    let (_, policies) = api(&server, &root, Method::GET, "/users/carol/policies", None).await;
    assert_eq!(policies.as_array().map(Vec::len), Some(1), "{policies}");
    assert_eq!(policies[0]["name"], "access.proj");
    assert_eq!(
        policies[0]["document"]["Statement"][0]["Resource"],
        "arn:nubo:codecommit:::proj"
    );

    // Deleted and created again: nobody keeps the old access.
    assert_eq!(post(&server, &a, "/repos/proj/delete", &[]).await, 303);
    create_repo(&server, &alice, "proj").await;
    assert_eq!(read(carol).await, 403);
    assert_eq!(read(bob).await, 403);
}
