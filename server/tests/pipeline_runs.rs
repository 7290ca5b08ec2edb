//! Pipeline executions end to end: a real `git push` starts one; source,
//! build and manual approval run in order with variables flowing between
//! them; approvals need the permission; SUPERSEDED holds a stage for one
//! execution and lets a newer waiting one replace an older one; QUEUED and
//! PARALLEL; retry and stop; a server killed mid-build.

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn a_push_runs_source_build_and_approval_in_order() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let (s, created) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created, json!({"name": "web", "warnings": []}));

    // A real push to the source branch starts an execution.
    let commit = push(&server, &alice, "web", &[("README.md", "# web, again\n")]).await;
    let mut list = Value::Null;
    for _ in 0..100 {
        list = api(
            &server,
            &alice,
            Method::GET,
            "/pipelines/web/executions",
            None,
        )
        .await
        .1;
        if list.as_array().is_some_and(|l| !l.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let id = list[0]["id"].as_str().expect("an execution").to_string();
    assert_eq!(list[0]["trigger"]["type"], "push");
    assert_eq!(list[0]["source_revision"]["commit"], commit);

    let e = wait_until(&server, &alice, "web", &id, "the approval", |e| {
        action(e, 2)["status"] == "InProgress"
    })
    .await;
    assert_eq!(e["status"], "InProgress");
    assert_eq!(e["stages"][0]["status"], "Succeeded");
    assert_eq!(e["stages"][1]["status"], "Succeeded");
    assert_eq!(e["stages"][2]["status"], "InProgress");
    assert_eq!(e["waiting"], "waiting for approval of Approve/Gate");
    let build_id = action(&e, 1)["build_id"].as_str().unwrap().to_string();
    // The source's variable reached the build, the build's the approval.
    assert!(build_log(&server, &alice, &build_id)
        .await
        .contains(&format!("commit={commit}")));
    // The build links back to its execution.
    let b = wait_build(&server, &alice, &build_id).await;
    assert_eq!(b["pipeline"], json!({"pipeline": "web", "execution": id}));
    let number = b["number"].as_i64().unwrap();
    assert_eq!(action(&e, 2)["summary"], format!("Ship 1.{number}?"));
    let started = |stage: usize| {
        action(&e, stage)["started_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        started(0) <= started(1) && started(1) <= started(2),
        "{e:#}"
    );

    // Approving needs codepipeline:PutApprovalResult: bob has none.
    let bob = server.user_with_token("bob", false);
    let answer =
        json!({"stage": "Approve", "action": "Gate", "result": "Approved", "comment": "ship it"});
    let (s, body) = api(
        &server,
        &bob,
        Method::POST,
        &format!("/pipelines/web/executions/{id}/approval"),
        Some(answer.clone()),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    let (_, audit) = api(
        &server,
        &server.user_with_token("root", true),
        Method::GET,
        "/audit",
        None,
    )
    .await;
    assert!(
        audit.as_array().unwrap().iter().any(|a| a["user"] == "bob"
            && a["action"] == "codepipeline:PutApprovalResult"
            && a["allowed"] == false),
        "the refusal is audited: {audit:#}"
    );
    let (s, body) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{id}/approval"),
        Some(answer.clone()),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let e = wait_until(&server, &alice, "web", &id, "the end", |e| {
        e["status"] != "InProgress"
    })
    .await;
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(action(&e, 2)["summary"], "approved by alice: ship it");
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{id}/approval"),
        Some(answer),
    )
    .await;
    assert_eq!(s, 409, "answered once");
}

#[tokio::test]
async fn superseded_executions_wait_for_a_held_stage_and_the_newest_waiting_one_wins() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201);
    let start = || async {
        let (s, b) = api(
            &server,
            &alice,
            Method::POST,
            "/pipelines/web/executions",
            Some(json!({"ref": "main"})),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_str().unwrap().to_string()
    };
    let first = start().await;
    wait_until(
        &server,
        &alice,
        "web",
        &first,
        "the first at its approval",
        |e| action(e, 2)["status"] == "InProgress",
    )
    .await;
    // The second gets through its build and waits in front of the held stage.
    let second = start().await;
    let e = wait_until(&server, &alice, "web", &second, "the second waiting", |e| {
        e["waiting"]
            .as_str()
            .is_some_and(|w| w.contains("waiting for execution #1 to leave stage Approve"))
    })
    .await;
    assert_eq!(e["stages"][2]["status"], Value::Null, "not entered: {e:#}");
    // A third overtakes it there: the second is superseded between stages.
    let third = start().await;
    wait_until(&server, &alice, "web", &third, "the third waiting", |e| {
        e["waiting"].as_str().is_some_and(|w| w.contains("Approve"))
    })
    .await;
    let e = wait_until(
        &server,
        &alice,
        "web",
        &second,
        "the second superseded",
        |e| e["status"] == "Superseded",
    )
    .await;
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("superseded by execution #3"),
        "{e:#}"
    );
    // Rejected, the first fails and frees the stage for the third.
    let reject = json!({"stage": "Approve", "action": "Gate", "result": "Rejected", "comment": "not this one"});
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{first}/approval"),
        Some(reject),
    )
    .await;
    assert_eq!(s, 200);
    let e = wait_until(&server, &alice, "web", &first, "the first failed", |e| {
        e["status"] == "Failed"
    })
    .await;
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("rejected by alice: not this one"),
        "{e:#}"
    );
    wait_until(
        &server,
        &alice,
        "web",
        &third,
        "the third at its approval",
        |e| action(e, 2)["status"] == "InProgress",
    )
    .await;
    // The first can no longer be retried there; the third can be stopped.
    let (s, body) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{first}/retry"),
        Some(json!({"stage": "Approve", "mode": "FAILED_ACTIONS"})),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    let (s, body) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{third}/stop"),
        Some(json!({"abandon": true})),
    )
    .await;
    assert_eq!((s, body["status"].as_str()), (200, Some("Stopped")));
    let e = execution(&server, &alice, "web", &third).await;
    assert_eq!(action(&e, 2)["status"], "Abandoned");
    // Once another execution entered the stage, never again (as AWS).
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{first}/retry"),
        Some(json!({"stage": "Approve"})),
    )
    .await;
    assert_eq!(s, 409);
}

#[tokio::test]
async fn a_rejected_approval_is_retried_and_the_build_before_it_is_kept() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201);
    let (_, b) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/web/executions",
        None,
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let e = wait_until(&server, &alice, "web", &id, "the approval", |e| {
        action(e, 2)["status"] == "InProgress"
    })
    .await;
    let build = action(&e, 1)["build_id"].clone();
    let url = format!("/pipelines/web/executions/{id}");
    let answer = |result: &str| json!({"stage": "Approve", "action": "Gate", "result": result, "comment": ""});
    api(
        &server,
        &alice,
        Method::POST,
        &format!("{url}/approval"),
        Some(answer("Rejected")),
    )
    .await;
    wait_until(&server, &alice, "web", &id, "the failure", |e| {
        e["status"] == "Failed"
    })
    .await;
    let (s, body) = api(
        &server,
        &alice,
        Method::POST,
        &format!("{url}/retry"),
        Some(json!({"stage": "Build"})),
    )
    .await;
    assert_eq!(s, 409, "only the failed stage: {body}");
    let (s, body) = api(
        &server,
        &alice,
        Method::POST,
        &format!("{url}/retry"),
        Some(json!({"stage": "Approve", "mode": "FAILED_ACTIONS"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    wait_until(&server, &alice, "web", &id, "the approval again", |e| {
        e["status"] == "InProgress" && action(e, 2)["status"] == "InProgress"
    })
    .await;
    api(
        &server,
        &alice,
        Method::POST,
        &format!("{url}/approval"),
        Some(answer("Approved")),
    )
    .await;
    let e = wait_until(&server, &alice, "web", &id, "the end", |e| {
        e["status"] != "InProgress"
    })
    .await;
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(
        action(&e, 1)["build_id"],
        build,
        "the build was not run again"
    );
}

#[tokio::test]
async fn a_server_killed_mid_execution_fails_the_cut_action_and_the_stage_can_be_retried() {
    let mut server = Server::start(&[]);
    let alice = server.user_with_token("alice", false);
    create_repo(&server, &alice, "web").await;
    push(&server, &alice, "web", &[("README.md", "# web\n")]).await;
    let slow =
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 60\n";
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/projects",
        Some(json!({"name": "web-build", "repo": "web", "buildspec": slow})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("web")),
    )
    .await;
    assert_eq!(s, 201);
    let (_, b) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/web/executions",
        None,
    )
    .await;
    let id = b["id"].as_str().unwrap().to_string();
    let e = wait_until(&server, &alice, "web", &id, "the build running", |e| {
        action(e, 1)["build_id"].is_string()
    })
    .await;
    let build = action(&e, 1)["build_id"].as_str().unwrap().to_string();
    for _ in 0..300 {
        if build_log(&server, &alice, &build)
            .await
            .contains("\nstarted\n")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill();
    let data = server.data_dir.clone();
    let restarted = Server::start_in(&data, &[], &[]);
    let e = wait_until(
        &restarted,
        &alice,
        "web",
        &id,
        "the execution failed",
        |e| e["status"] != "InProgress",
    )
    .await;
    assert_eq!(e["status"], "Failed", "{e:#}");
    assert_eq!(action(&e, 1)["status"], "Failed");
    assert!(
        action(&e, 1)["summary"]
            .as_str()
            .unwrap()
            .contains("the server stopped while the build was running"),
        "{e:#}"
    );
    assert_eq!(
        action(&e, 0)["status"],
        "Succeeded",
        "what was done stays done"
    );
    let (s, body) = api(
        &restarted,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{id}/retry"),
        Some(json!({"stage": "Build"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let e = wait_until(&restarted, &alice, "web", &id, "a new build", |e| {
        action(e, 1)["build_id"]
            .as_str()
            .is_some_and(|b| b != build)
    })
    .await;
    assert_eq!(action(&e, 1)["status"], "InProgress");
    let (s, body) = api(
        &restarted,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{id}/stop"),
        Some(json!({"abandon": true})),
    )
    .await;
    assert_eq!((s, body["status"].as_str()), (200, Some("Stopped")));
}

#[tokio::test]
async fn queued_keeps_order_and_parallel_runs_executions_side_by_side() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    for (name, mode) in [("queued", "QUEUED"), ("parallel", "PARALLEL")] {
        let mut d = declaration(name);
        d["pipeline"]["executionMode"] = json!(mode);
        let (s, body) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
        assert_eq!(s, 201, "{body}");
    }
    let start = |p: &'static str| {
        let (server, alice) = (&server, &alice);
        async move {
            let (_, b) = api(
                server,
                alice,
                Method::POST,
                &format!("/pipelines/{p}/executions"),
                None,
            )
            .await;
            b["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{b}"))
                .to_string()
        }
    };
    let at_gate = |e: &Value| action(e, 2)["status"] == "InProgress";
    // QUEUED: the second and third wait in order; nobody is superseded.
    let q1 = start("queued").await;
    wait_until(&server, &alice, "queued", &q1, "#1 at the gate", at_gate).await;
    let q2 = start("queued").await;
    wait_until(&server, &alice, "queued", &q2, "#2 waiting", |e| {
        e["waiting"].as_str().is_some_and(|w| w.contains("#1"))
    })
    .await;
    let q3 = start("queued").await;
    wait_until(&server, &alice, "queued", &q3, "#3 queued", |e| {
        e["waiting"].as_str().is_some_and(|w| w.contains("Approve"))
    })
    .await;
    assert_eq!(
        execution(&server, &alice, "queued", &q2).await["status"],
        "InProgress",
        "not superseded"
    );
    let approve =
        json!({"stage": "Approve", "action": "Gate", "result": "Approved", "comment": ""});
    api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/queued/executions/{q1}/approval"),
        Some(approve.clone()),
    )
    .await;
    wait_until(&server, &alice, "queued", &q2, "#2 at the gate", at_gate).await;
    // #3 is told in the same engine round, after #2 moved: wait for it.
    wait_until(&server, &alice, "queued", &q3, "#3 behind #2", |e| {
        e["waiting"].as_str().is_some_and(|w| w.contains("#2"))
    })
    .await;
    // PARALLEL: both at their gates at once.
    let p1 = start("parallel").await;
    let p2 = start("parallel").await;
    wait_until(&server, &alice, "parallel", &p1, "#1 at the gate", at_gate).await;
    wait_until(&server, &alice, "parallel", &p2, "#2 at the gate", at_gate).await;
}

#[tokio::test]
async fn an_approval_marked_supersede_gives_way_to_a_newer_execution() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let mut d = declaration("web");
    d["pipeline"]["stages"][2]["actions"][0]["configuration"]["Supersede"] = json!("true");
    let (s, _) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
    assert_eq!(s, 201);
    let start = || async {
        let (_, b) = api(
            &server,
            &alice,
            Method::POST,
            "/pipelines/web/executions",
            None,
        )
        .await;
        b["id"].as_str().unwrap().to_string()
    };
    let old = start().await;
    wait_until(
        &server,
        &alice,
        "web",
        &old,
        "the old one at its approval",
        |e| action(e, 2)["status"] == "InProgress",
    )
    .await;
    let new = start().await;
    // The newer one replaces it at the gate instead of waiting behind it.
    let e = wait_until(
        &server,
        &alice,
        "web",
        &old,
        "the old one superseded",
        |e| e["status"] == "Superseded",
    )
    .await;
    assert_eq!(action(&e, 2)["status"], "Abandoned");
    assert!(
        e["reason"].as_str().unwrap().contains("Supersede: true"),
        "{e:#}"
    );
    wait_until(
        &server,
        &alice,
        "web",
        &new,
        "the new one at its approval",
        |e| action(e, 2)["status"] == "InProgress",
    )
    .await;
    let answer = json!({"stage": "Approve", "action": "Gate", "result": "Approved", "comment": ""});
    let (s, _) = api(
        &server,
        &alice,
        Method::POST,
        &format!("/pipelines/web/executions/{old}/approval"),
        Some(answer),
    )
    .await;
    assert_eq!(s, 409, "the old commit can no longer be approved");
}
