//! IAM-style policies with real git: branch protection with its `remote:`
//! message, grants through groups, explicit deny over allow, the simulator
//! and the audit log.

mod common;

use common::{client, create_repo, git, ok, sign_in, Server};
use serde_json::{json, Value};

async fn put(server: &Server, token: &str, path: &str, body: Value) -> reqwest::Response {
    client()
        .put(server.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn branch_protection_group_grants_and_explicit_deny() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root2", true);
    let alice = server.user_with_token("alice", false);
    let carol = server.user_with_token("carol", false);
    create_repo(&server, &alice, "app").await;
    let url = server.url("/v1/repos/app");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();

    // Carol has no access until a group grants it.
    assert!(!git(w, "carol", &carol, &["ls-remote", &url])
        .status
        .success());
    let r = client()
        .post(server.url("/api/v1/groups"))
        .bearer_auth(&admin)
        .json(&json!({"name": "devs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        client()
            .put(server.url("/api/v1/groups/devs/members/carol"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let grant = json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DevsUseApp", "Effect": "Allow",
                       "Action": ["codecommit:GitPull", "codecommit:GitPush", "codecommit:GetRepository"],
                       "Resource": "arn:nubo:codecommit:::app"}]
    });
    assert_eq!(
        put(
            &server,
            &admin,
            "/api/v1/groups/devs/policies/use-app",
            grant
        )
        .await
        .status(),
        200
    );
    // Branch protection on carol herself.
    let protect = json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ProtectMain", "Effect": "Deny", "Action": "codecommit:GitPush",
                       "Resource": "arn:nubo:codecommit:::app",
                       "Condition": {"StringEqualsIfExists": {"codecommit:References": ["refs/heads/main"]},
                                     "Null": {"codecommit:References": "false"}}}]
    });
    assert_eq!(
        put(
            &server,
            &admin,
            "/api/v1/users/carol/policies/protect-main",
            protect
        )
        .await
        .status(),
        200
    );
    // Non-admins cannot change policies; bad documents are refused.
    assert_eq!(
        put(
            &server,
            &alice,
            "/api/v1/users/alice/policies/mine",
            json!({"Statement": []})
        )
        .await
        .status(),
        403
    );
    let r = put(
        &server,
        &admin,
        "/api/v1/users/carol/policies/bad",
        json!({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}),
    )
    .await;
    assert_eq!(r.status(), 422);

    ok(git(w, "x", "x", &["init", "-q", "work"]));
    let work = w.join("work");
    std::fs::write(work.join("f"), "1\n").unwrap();
    ok(git(&work, "x", "x", &["add", "."]));
    ok(git(&work, "x", "x", &["commit", "-qm", "one"]));
    // Carol may push a feature branch...
    ok(git(
        &work,
        "carol",
        &carol,
        &["push", "-q", &url, "HEAD:refs/heads/feature"],
    ));
    // ...but not main, and git shows her why.
    let out = git(
        &work,
        "carol",
        &carol,
        &["push", &url, "HEAD:refs/heads/main"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("remote: Nubo: carol is not allowed to perform codecommit:GitPush on app (refs/heads/main): explicit deny in user/carol/protect-main / ProtectMain"),
        "{err}"
    );
    let refs = ok(git(w, "alice", &alice, &["ls-remote", &url]));
    assert!(
        refs.contains("refs/heads/feature") && !refs.contains("refs/heads/main"),
        "{refs}"
    );
    // The creator is not bound by carol's policy.
    ok(git(
        &work,
        "alice",
        &alice,
        &["push", "-q", &url, "HEAD:refs/heads/main"],
    ));

    // An explicit deny on a group beats the allow.
    let deny = json!({"Statement": {"Sid": "Freeze", "Effect": "Deny", "Action": "codecommit:GitPush", "Resource": "*"}});
    assert_eq!(
        put(&server, &admin, "/api/v1/groups/devs/policies/freeze", deny)
            .await
            .status(),
        200
    );
    let out = git(
        &work,
        "carol",
        &carol,
        &["push", &url, "HEAD:refs/heads/feature2"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("group/devs/freeze / Freeze"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(git(w, "carol", &carol, &["ls-remote", &url]));

    // The simulator explains decisions without recording them.
    let sim = |body: Value, token: String| {
        let url = server.url("/api/v1/policy-simulator");
        async move {
            client()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let d: Value = sim(json!({"user": "carol", "action": "codecommit:GitPush", "repo": "app", "ref": "refs/heads/main"}), admin.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d["allowed"], false);
    assert_eq!(d["basis"], "explicit-deny");
    let d: Value = sim(
        json!({"user": "carol", "action": "codecommit:GitPull", "repo": "app"}),
        carol.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(d["allowed"], true);
    assert_eq!(d["statement"], "group/devs/use-app / DevsUseApp");
    assert_eq!(
        sim(
            json!({"user": "alice", "action": "codecommit:GitPull", "repo": "app"}),
            carol.clone()
        )
        .await
        .status(),
        403
    );

    // Every decision is in the audit log, for administrators.
    let log: Value = client()
        .get(server.url("/api/v1/audit"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log.as_array().unwrap();
    assert!(entries.iter().any(|e| e["user"] == "carol"
        && e["ref"] == "refs/heads/main"
        && e["allowed"] == false
        && e["statement"] == "user/carol/protect-main / ProtectMain"));
    assert!(entries.iter().any(|e| e["user"] == "carol"
        && e["action"] == "codecommit:GitPull"
        && e["allowed"] == true));
    assert_eq!(
        client()
            .get(server.url("/api/v1/audit"))
            .bearer_auth(&carol)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // The same in the browser pages for administrators.
    let (cookie, csrf) = sign_in(&server, "root2", "password-of-the-test").await;
    let html = client()
        .get(server.url("/admin/audit"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("user/carol/protect-main / ProtectMain"),
        "audit page"
    );
    let html = client()
        .post(server.url("/admin/simulator"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("user", "carol"),
            ("action", "codecommit:GitPush"),
            ("repo", "app"),
            ("reference", "refs/heads/main"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("<strong>Denied</strong>") && html.contains("ProtectMain"),
        "{html}"
    );
    let (carol_cookie, _) = sign_in(&server, "carol", "password-of-the-test").await;
    let r = client()
        .get(server.url("/admin/audit"))
        .header("cookie", &carol_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn create_and_delete_follow_policies() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root2", true);
    let dave = server.user_with_token("dave", false);
    create_repo(&server, &dave, "daves").await;
    let no_create = json!({"Statement": {"Effect": "Deny", "Action": "codecommit:CreateRepository", "Resource": "*"}});
    assert_eq!(
        put(
            &server,
            &admin,
            "/api/v1/users/dave/policies/no-create",
            no_create
        )
        .await
        .status(),
        200
    );
    let r = client()
        .post(server.url("/api/v1/repos"))
        .bearer_auth(&dave)
        .json(&json!({"name": "another"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let no_delete = json!({"Statement": {"Effect": "Deny", "Action": "codecommit:DeleteRepository", "Resource": "arn:nubo:codecommit:::daves"}});
    assert_eq!(
        put(
            &server,
            &admin,
            "/api/v1/users/dave/policies/keep",
            no_delete
        )
        .await
        .status(),
        200
    );
    let r = client()
        .delete(server.url("/api/v1/repos/daves"))
        .bearer_auth(&dave)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        client()
            .delete(server.url("/api/v1/users/dave/policies/keep"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = client()
        .delete(server.url("/api/v1/repos/daves"))
        .bearer_auth(&dave)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn force_pushes_work_and_can_be_denied_by_policy() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root2", true);
    let alice = server.user_with_token("alice", false);
    create_repo(&server, &alice, "history").await;
    let url = server.url("/v1/repos/history");
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "x", "x", &["init", "-q", "work"]));
    let work = w.join("work");
    for i in 0..2 {
        std::fs::write(work.join("f"), format!("{i}\n")).unwrap();
        ok(git(&work, "x", "x", &["add", "."]));
        ok(git(&work, "x", "x", &["commit", "-qm", &format!("c{i}")]));
    }
    ok(git(
        &work,
        "alice",
        &alice,
        &["push", "-q", &url, "HEAD:main", "HEAD:feature"],
    ));
    // Rewrite history and force-push: allowed by default.
    ok(git(&work, "x", "x", &["reset", "-q", "--hard", "HEAD~1"]));
    std::fs::write(work.join("f"), "rewritten\n").unwrap();
    ok(git(&work, "x", "x", &["commit", "-qam", "rewritten"]));
    let rewritten = ok(git(&work, "x", "x", &["rev-parse", "HEAD"]))
        .trim()
        .to_string();
    let out = git(
        &work,
        "alice",
        &alice,
        &["push", "-q", &url, "HEAD:feature"],
    );
    assert!(
        !out.status.success(),
        "a non-fast-forward push needs --force"
    );
    ok(git(
        &work,
        "alice",
        &alice,
        &["push", "-q", "--force", &url, "HEAD:feature"],
    ));
    // A deny on main blocks force-pushes there, even for the creator.
    let deny = json!({"Statement": {"Sid": "NoRewriteMain", "Effect": "Deny", "Action": "codecommit:GitPush",
        "Resource": "arn:nubo:codecommit:::history",
        "Condition": {"StringEquals": {"codecommit:References": "refs/heads/main"}}}});
    assert_eq!(
        put(
            &server,
            &admin,
            "/api/v1/users/alice/policies/no-rewrite",
            deny
        )
        .await
        .status(),
        200
    );
    let out = git(
        &work,
        "alice",
        &alice,
        &["push", "--force", &url, "HEAD:main"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NoRewriteMain"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs = ok(git(w, "alice", &alice, &["ls-remote", &url]));
    let main = refs
        .lines()
        .find(|l| l.ends_with("refs/heads/main"))
        .unwrap();
    let feature = refs
        .lines()
        .find(|l| l.ends_with("refs/heads/feature"))
        .unwrap();
    assert!(!main.starts_with(&rewritten), "main kept its history");
    assert!(feature.starts_with(&rewritten));
}

#[tokio::test]
async fn the_audit_log_records_what_became_of_an_allowed_create() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root2", true);
    let http = client();
    let create = |name: &str| {
        http.post(server.url("/api/v1/repos"))
            .bearer_auth(&admin)
            .json(&json!({ "name": name }))
            .send()
    };
    assert_eq!(create("dup").await.unwrap().status(), 201);
    assert_eq!(create("dup").await.unwrap().status(), 409);
    let audit: Value = http
        .get(server.url("/api/v1/audit"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let creates: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "codecommit:CreateRepository" && e["repo"] == "dup")
        .collect();
    assert_eq!(creates.len(), 2, "{audit:#}");
    // Both were allowed; one was done, the other failed (and says why).
    assert!(creates.iter().all(|e| e["allowed"] == true));
    let mut outcomes: Vec<&str> = creates
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["done", "failed: a repository named \"dup\" already exists"]
    );
}

#[tokio::test]
async fn a_refused_page_says_it_in_words_and_the_api_keeps_the_action() {
    let server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    let bob = server.user_with_token("bob", false);
    create_repo(&server, &alice, "private").await;
    let (cookie, _) = sign_in(&server, "bob", "password-of-the-test").await;
    let page = client()
        .get(server.url("/repos/private"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("You do not have permission to see the repository private."),
        "{html}"
    );
    assert!(
        !html.contains("codecommit:"),
        "an IAM action name on an ordinary user's page: {html}"
    );
    // API clients (and git) still get the action and the reason.
    let api = client()
        .get(server.url("/api/v1/repos/private"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    let body: Value = api.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "bob is not allowed to perform codecommit:GetRepository on private: no policy allows it"
    );
}
