//! What holds or steers an execution between and inside stages: actions
//! of one run order run side by side and the next after them, with the
//! artifacts of the earlier builds in their source; a disabled transition
//! (with its reason) holds executions before a stage until it is enabled
//! again; an approval unanswered within its `timeoutInMinutes` fails.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn start(server: &Server, token: &str, pipeline: &str) -> String {
    let (s, b) = api(
        server,
        token,
        Method::POST,
        &format!("/pipelines/{pipeline}/executions"),
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

async fn transition(server: &Server, token: &str, stage: &str, body: Value) -> (u16, Value) {
    api(
        server,
        token,
        Method::POST,
        &format!("/pipelines/web/transitions/{stage}"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_disabled_transition_holds_the_newest_execution_until_it_is_enabled() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let bob = server.user_with_token("bob", false);
    let (s, b) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201, "{b}");

    // Refusals change nothing.
    let freeze = json!({"enabled": false, "reason": "release freeze"});
    let (s, b) = transition(&server, &alice, "Source", freeze.clone()).await;
    assert_eq!(s, 422, "nothing transitions into the first stage: {b}");
    let (s, b) = transition(&server, &alice, "Build", json!({"enabled": false})).await;
    assert_eq!(s, 422, "a reason is needed: {b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("reason"));
    let (s, _) = transition(&server, &alice, "Nope", freeze.clone()).await;
    assert_eq!(s, 422);
    let (s, _) = transition(&server, &bob, "Build", freeze.clone()).await;
    assert_eq!(s, 404, "only its owner manages it");
    let (_, list) = api(
        &server,
        &alice,
        Method::GET,
        "/pipelines/web/transitions",
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["enabled"] == true));

    let (s, t) = transition(&server, &alice, "Build", freeze).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["enabled"], false);
    assert_eq!(t["disabled_by"], "alice");
    assert_eq!(t["reason"], "release freeze");

    // The first execution finishes its source stage and waits, saying why.
    let first = start(&server, &alice, "web").await;
    let held = |e: &Value| {
        e["waiting"].as_str().is_some_and(|w| {
            w.contains("transition into stage Build is disabled by alice: release freeze")
        })
    };
    let e = wait_until(&server, &alice, "web", &first, "#1 held", held).await;
    assert_eq!(action(&e, 0)["status"], "Succeeded");
    assert!(action(&e, 1)["status"].is_null(), "{e:#}");
    assert_eq!(e["status"], "InProgress");

    // A newer one supersedes it at the transition (as on AWS).
    let second = start(&server, &alice, "web").await;
    wait_until(&server, &alice, "web", &first, "#1 superseded", |e| {
        e["status"] == "Superseded"
    })
    .await;
    let e = wait_until(&server, &alice, "web", &second, "#2 held", held).await;
    assert!(action(&e, 1)["status"].is_null());

    // Enabled again, the held one goes on.
    let (s, t) = transition(&server, &alice, "Build", json!({"enabled": true})).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["enabled"], true);
    assert!(t["reason"].is_null());
    let e = wait_until(&server, &alice, "web", &second, "#2 at the gate", |e| {
        action(e, 2)["status"] == "InProgress"
    })
    .await;
    assert_eq!(action(&e, 1)["status"], "Succeeded");
}

async fn log(server: &Server, token: &str, build: &str) -> String {
    client()
        .get(server.url(&format!("/api/v1/builds/{build}/log")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The seconds since the epoch a build printed after `tag=`.
fn stamp(log: &str, tag: &str) -> f64 {
    log.lines()
        .filter_map(|l| l.split(&format!("{tag}=")).nth(1))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {tag}= in the log:\n{log}"))
}

#[tokio::test]
async fn equal_run_orders_run_side_by_side_and_later_builds_get_earlier_artifacts() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let maker = |what: &str| {
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo start=$(date +%s.%N)\n      - sleep 2\n      - mkdir -p out && echo {what} from $COMMIT > out/{what}.txt\n      - echo end=$(date +%s.%N)\nartifacts:\n  files: ['out/**/*']\n"
        )
    };
    project(&server, &alice, "make-app", &maker("app")).await;
    project(&server, &alice, "make-docs", &maker("docs")).await;
    project(
        &server,
        &alice,
        "check",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo start=$(date +%s.%N)\n      - cat out/app.txt\n      - cat $CODEBUILD_SRC_DIR_Docs/out/docs.txt\n      - test -f README.md\n",
    )
    .await;
    let build = |name: &str, project: &str, order: u32, inputs: Value, output: Option<&str>| {
        let mut a = json!({"name": name, "runOrder": order,
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {"ProjectName": project,
                "EnvironmentVariables": "[{\"name\":\"COMMIT\",\"value\":\"#{Src.CommitId}\",\"type\":\"PLAINTEXT\"}]"},
            "inputArtifacts": inputs});
        if let Some(o) = output {
            a["outputArtifacts"] = json!([{"name": o}]);
        }
        a
    };
    let d = json!({"pipeline": {"name": "web", "stages": [
        {"name": "Source", "actions": [{"name": "Code",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "web", "BranchName": "main"},
            "outputArtifacts": [{"name": "Code"}], "namespace": "Src"}]},
        {"name": "Build", "actions": [
            build("App", "make-app", 1, json!([{"name": "Code"}]), Some("App")),
            build("Docs", "make-docs", 1, json!([{"name": "Code"}]), Some("Docs")),
            build("Check", "check", 2, json!([{"name": "App"}, {"name": "Docs"}]), None)]}
    ]}});
    let (s, b) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
    assert_eq!(s, 201, "{b}");
    let id = start(&server, &alice, "web").await;
    let e = wait_until(&server, &alice, "web", &id, "the execution's end", |e| {
        e["status"] != "InProgress"
    })
    .await;
    let actions = &e["stages"][1]["actions"];
    let build_of = |i: usize| actions[i]["build_id"].as_str().unwrap().to_string();
    let check_log = log(&server, &alice, &build_of(2)).await;
    assert_eq!(e["status"], "Succeeded", "{e:#}\n{check_log}");
    let (app, docs) = (
        log(&server, &alice, &build_of(0)).await,
        log(&server, &alice, &build_of(1)).await,
    );
    // App and Docs overlapped; Check began after both ended.
    assert!(stamp(&app, "start") < stamp(&docs, "end"), "{app}\n{docs}");
    assert!(stamp(&docs, "start") < stamp(&app, "end"), "{app}\n{docs}");
    let last_end = stamp(&app, "end").max(stamp(&docs, "end"));
    assert!(stamp(&check_log, "start") > last_end, "{check_log}");
    // The primary input over the checkout, the other one beside it.
    let commit = e["source_revision"]["commit"].as_str().unwrap();
    assert!(
        check_log.contains(&format!("app from {commit}")),
        "{check_log}"
    );
    assert!(
        check_log.contains(&format!("docs from {commit}")),
        "{check_log}"
    );
    assert!(
        check_log.contains("Input artifact App from build"),
        "{check_log}"
    );
    assert!(check_log.contains(".codepipeline/Docs"), "{check_log}");
}

#[tokio::test]
async fn an_approval_with_no_answer_in_its_timeout_fails_the_execution() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let mut d = declaration("web");
    d["pipeline"]["stages"][2]["actions"][0]["timeoutInMinutes"] = json!(1);
    let mut bad = d.clone();
    bad["pipeline"]["name"] = json!("never");
    bad["pipeline"]["stages"][2]["actions"][0]["timeoutInMinutes"] = json!(20000);
    let (s, b) = api(&server, &alice, Method::POST, "/pipelines", Some(bad)).await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timeoutInMinutes"),
        "{b}"
    );
    let (s, b) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
    assert_eq!(s, 201, "{b}");
    let id = start(&server, &alice, "web").await;
    wait_until(&server, &alice, "web", &id, "the gate", |e| {
        action(e, 2)["status"] == "InProgress"
    })
    .await;
    let waiting_since = std::time::Instant::now();
    // A minute later (the check runs every half second) it has failed.
    let mut e = Value::Null;
    for _ in 0..90 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        e = execution(&server, &alice, "web", &id).await;
        if e["status"] != "InProgress" {
            break;
        }
    }
    assert_eq!(e["status"], "Failed", "{e:#}");
    assert_eq!(action(&e, 2)["status"], "Failed");
    assert_eq!(
        action(&e, 2)["summary"],
        "no answer within 1 minute: timed out"
    );
    // Not before its minute (measured from when the test saw it waiting).
    assert!(waiting_since.elapsed() >= std::time::Duration::from_secs(55));
    let answer = json!({"stage": "Approve", "action": "Gate", "result": "Approved", "comment": ""});
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{id}/approval"),
        Some(answer),
    )
    .await;
    assert_eq!(s, 409, "too late to answer");
}

#[tokio::test]
async fn readers_of_the_source_follow_a_pipeline_and_approve_by_policy_but_do_not_manage_it() {
    let server = Server::start(&[]);
    let admin = server.user_with_token("root2", true);
    let alice = setup(&server).await;
    let bob = server.user_with_token("bob", false);
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201);
    let id = start(&server, &alice, "web").await;
    wait_until(&server, &alice, "web", &id, "the gate", |e| {
        action(e, 2)["status"] == "InProgress"
    })
    .await;
    let execution_path = format!("/pipelines/web/executions/{id}");
    // Without access to the repository, bob sees nothing.
    let (s, _) = api(&server, &bob, Method::GET, &execution_path, None).await;
    assert_eq!(s, 404);
    let (_, list) = api(&server, &bob, Method::GET, "/pipelines", None).await;
    assert_eq!(list, json!([]));
    let (_, waiting) = api(
        &server,
        &bob,
        Method::GET,
        "/pipelines/approvals/waiting",
        None,
    )
    .await;
    assert_eq!(waiting, json!([]), "not bob's to answer yet");
    let (_, waiting) = api(
        &server,
        &alice,
        Method::GET,
        "/pipelines/approvals/waiting",
        None,
    )
    .await;
    assert_eq!(
        waiting[0]["pipeline"], "web",
        "the owner is told: {waiting}"
    );

    // Reading web (and answering its gate) is a policy away.
    let grant = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["codecommit:GitPull", "codecommit:GetRepository"], "Resource": "arn:nubo:codecommit:::web"},
        {"Effect": "Allow", "Action": "codepipeline:PutApprovalResult", "Resource": "arn:nubo:codepipeline:::web/Approve/*"}]});
    let r = client()
        .put(server.url("/api/v1/users/bob/policies/follow-web"))
        .bearer_auth(&admin)
        .json(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, list) = api(&server, &bob, Method::GET, "/pipelines", None).await;
    assert_eq!(list[0]["name"], "web", "{list}");
    let (s, e) = api(&server, &bob, Method::GET, &execution_path, None).await;
    assert_eq!(s, 200, "{e}");
    let (s, _) = api(&server, &bob, Method::GET, "/pipelines/web/events", None).await;
    assert_eq!(s, 200);
    // Bob is told the gate waits for him, with what it says and where.
    let (_, waiting) = api(
        &server,
        &bob,
        Method::GET,
        "/pipelines/approvals/waiting",
        None,
    )
    .await;
    assert_eq!(waiting.as_array().unwrap().len(), 1, "{waiting}");
    assert_eq!(waiting[0]["stage"], "Approve");
    assert_eq!(waiting[0]["action"], "Gate");
    assert_eq!(waiting[0]["custom_data"], "Ship 1.1?");
    assert_eq!(waiting[0]["path"], execution_path.as_str());
    // Managing stays with its owner.
    for (method, path, body) in [
        (Method::POST, format!("{execution_path}/stop"), json!({})),
        (
            Method::POST,
            "/pipelines/web/executions".to_string(),
            json!({}),
        ),
        (Method::DELETE, "/pipelines/web".to_string(), json!({})),
        (
            Method::POST,
            "/pipelines/web/transitions/Build".to_string(),
            json!({"enabled": false, "reason": "mine now"}),
        ),
        (
            Method::GET,
            "/pipelines/web/notifications".to_string(),
            json!({}),
        ),
    ] {
        let (s, _) = api(&server, &bob, method.clone(), &path, Some(body)).await;
        assert_eq!(s, 404, "{method} {path}");
    }
    // The page shows bob the gate but none of the owner's controls.
    let (cookie, _) = sign_in(&server, "bob", "password-of-the-test").await;
    let page = client()
        .get(server.url(&format!("/pipelines/web/executions/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("data-testid=\"approval\""),
        "the gate is answerable"
    );
    assert!(!html.contains("/stop\""), "no stop button");
    assert!(!html.contains("data-testid=\"webhook\""), "no webhook card");
    let list_page = client()
        .get(server.url("/pipelines"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list_page.contains("Waiting for your approval"),
        "{list_page}"
    );
    assert!(!html.contains("data-testid=\"start\""), "no start form");
    let answer =
        json!({"stage": "Approve", "action": "Gate", "result": "Approved", "comment": "by bob"});
    let (s, b) = api(
        &server,
        &bob,
        Method::POST,
        &format!("{execution_path}/approval"),
        Some(answer),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let e = wait_until(&server, &alice, "web", &id, "the end", |e| {
        e["status"] == "Succeeded"
    })
    .await;
    assert_eq!(action(&e, 2)["summary"], "approved by bob: by bob");
    assert!(action(&e, 1)["duration_ms"].as_i64().is_some(), "{e:#}");
    let (_, waiting) = api(
        &server,
        &bob,
        Method::GET,
        "/pipelines/approvals/waiting",
        None,
    )
    .await;
    assert_eq!(waiting, json!([]), "answered");
}
