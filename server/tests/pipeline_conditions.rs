//! Stage conditions: an entry condition skips a stage or fails the
//! execution, a failed stage is retried automatically once, and a failed
//! stage rolls back: a new execution re-runs it with the commit of the
//! last execution that got through it; a retry by hand runs the failed
//! actions again, or all of them.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn start(server: &Server, token: &str, pipeline: &str, body: Value) -> String {
    let (s, b) = api(
        server,
        token,
        Method::POST,
        &format!("/pipelines/{pipeline}/executions"),
        Some(body),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_string()
}

async fn ended(server: &Server, token: &str, pipeline: &str, id: &str) -> Value {
    wait_until(server, token, pipeline, id, "the end", |e| {
        e["status"] != "InProgress"
    })
    .await
}

fn source() -> Value {
    json!({"name": "Source", "actions": [{"name": "Code",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "web", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}], "namespace": "SourceVariables"}]})
}

fn build(name: &str, project: &str) -> Value {
    json!({"name": name,
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": project}, "inputArtifacts": [{"name": "Src"}]})
}

fn check(result: &str, variable: &str, value: &str) -> Value {
    json!({"conditions": [{"result": result, "rules": [{"name": "Check",
        "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"},
        "configuration": {"Variable": variable, "Value": value, "Operator": "EQ"}}]}]})
}

async fn builds_of(server: &Server, token: &str, project: &str) -> usize {
    let (_, list) = api(
        server,
        token,
        Method::GET,
        &format!("/projects/{project}/builds"),
        None,
    )
    .await;
    list.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn entry_conditions_skip_or_fail_and_a_failed_stage_is_retried_once() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    project(&server, &alice, "flaky", "version: 0.2\nphases:\n  build:\n    commands:\n      - test $CODEBUILD_BUILD_NUMBER -ge 2\n").await;
    project(
        &server,
        &alice,
        "hopeless",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n",
    )
    .await;
    let mut b = json!({"name": "Build", "actions": [build("Compile", "flaky")],
        "beforeEntry": check("SKIP", "#{variables.RUN}", "yes"),
        "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}}});
    let gate = json!({"name": "Check", "actions": [build("Verify", "web-build")],
        "beforeEntry": check("FAIL", "#{variables.GATE}", "open")});
    let d = json!({"pipeline": {"name": "cond", "pipelineType": "V2",
        "variables": [{"name": "RUN", "defaultValue": "yes"}, {"name": "GATE", "defaultValue": "open"}],
        "stages": [source(), b.clone(), gate]}});
    let (s, made) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(made["warnings"], json!([]), "conditions are acted on now");

    // Skipped: the stage's entry condition fails with result SKIP.
    let id = start(&server, &alice, "cond", json!({"variables": {"RUN": "no"}})).await;
    let e = ended(&server, &alice, "cond", &id).await;
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(e["stages"][1]["status"], "Skipped");
    assert!(e["stages"][1]["actions"][0]["status"].is_null());
    let note = e["stages"][1]["note"].as_str().unwrap();
    assert!(
        note.contains("skipped by its entry condition: rule Check failed: \"no\" EQ \"yes\""),
        "{note}"
    );
    assert_eq!(e["stages"][2]["status"], "Succeeded");
    assert_eq!(builds_of(&server, &alice, "flaky").await, 0);

    // Retried: the flaky build fails once, the stage runs again by itself.
    let id = start(&server, &alice, "cond", json!({})).await;
    let e = ended(&server, &alice, "cond", &id).await;
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(
        e["stages"][1]["note"],
        "retried automatically (FAILED_ACTIONS)"
    );
    assert_eq!(builds_of(&server, &alice, "flaky").await, 2);
    let (_, events) = api(
        &server,
        &alice,
        Method::GET,
        &format!("/pipelines/cond/events?execution={id}"),
        None,
    )
    .await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["state"] == "RESUMED"
                && ev["event"]["detail"]["summary"]
                    == "stage Build retried automatically (FAILED_ACTIONS)"),
        "{events:#}"
    );

    // Failed: the entry condition with result FAIL.
    let id = start(
        &server,
        &alice,
        "cond",
        json!({"variables": {"GATE": "closed"}}),
    )
    .await;
    let e = ended(&server, &alice, "cond", &id).await;
    assert_eq!(e["status"], "Failed");
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "stage Check's entry condition failed: rule Check failed: \"closed\" EQ \"open\""
        ),
        "{reason}"
    );
    assert!(
        e["stages"][2]["actions"][0]["status"].is_null(),
        "nothing of it ran"
    );

    // Only once: a stage that fails again stays failed.
    b["actions"] = json!([build("Compile", "hopeless")]);
    b.as_object_mut().unwrap().remove("beforeEntry");
    let d = json!({"pipeline": {"name": "hopeless", "stages": [source(), b]}});
    let (s, made) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
    assert_eq!(s, 201, "{made}");
    let id = start(&server, &alice, "hopeless", json!({})).await;
    let e = ended(&server, &alice, "hopeless", &id).await;
    assert_eq!(e["status"], "Failed");
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .ends_with("(retried automatically once already)"),
        "{e:#}"
    );
    assert_eq!(builds_of(&server, &alice, "hopeless").await, 2);
}

#[tokio::test]
async fn a_failed_stage_rolls_back_to_the_last_commit_that_got_through_it() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    project(
        &server,
        &alice,
        "ship",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - test ! -f broken\n",
    )
    .await;
    let ship = |on_failure: Value| json!({"name": "Ship", "actions": [build("Deploy", "ship")], "onFailure": on_failure});
    // What cannot be rolled back is refused.
    for (name, mode, stages) in [
        (
            "first",
            "SUPERSEDED",
            json!([{"name": "Source", "actions": source()["actions"], "onFailure": {"result": "ROLLBACK"}}, ship(json!({"result": "FAIL"}))]),
        ),
        (
            "parallel",
            "PARALLEL",
            json!([source(), ship(json!({"result": "ROLLBACK"}))]),
        ),
    ] {
        let d = json!({"pipeline": {"name": name, "executionMode": mode, "stages": stages}});
        let (s, b) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
        assert_eq!(s, 422, "{name}: {b}");
    }
    // Two commits first (pushes before the pipeline start nothing).
    let good = push(&server, &alice, "web", &[("app.txt", "v1\n")]).await;
    let bad = push(&server, &alice, "web", &[("broken", "yes\n")]).await;
    let d = json!({"pipeline": {"name": "rb", "stages": [source(), ship(json!({"result": "ROLLBACK"}))]}});
    let (s, b) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
    assert_eq!(s, 201, "{b}");

    let first = start(&server, &alice, "rb", json!({"ref": good})).await;
    assert_eq!(
        ended(&server, &alice, "rb", &first).await["status"],
        "Succeeded"
    );
    let second = start(&server, &alice, "rb", json!({"ref": bad})).await;
    let e = ended(&server, &alice, "rb", &second).await;
    assert_eq!(e["status"], "Failed");
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.contains("rolled back by execution #3 (to execution #1's commit)"),
        "{reason}"
    );

    let (_, list) = api(
        &server,
        &alice,
        Method::GET,
        "/pipelines/rb/executions",
        None,
    )
    .await;
    let rollback = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["number"], 3);
    assert_eq!(list[0]["trigger"]["type"], "rollback");
    let e = ended(&server, &alice, "rb", &rollback).await;
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(
        e["source_revision"]["commit"],
        good.as_str(),
        "the last good commit"
    );
    assert!(
        e["stages"][0]["status"].is_null(),
        "the source stage is not run again"
    );
    assert_eq!(e["stages"][1]["status"], "Succeeded");
}

#[tokio::test]
async fn retrying_all_actions_runs_the_stage_again_and_failed_actions_only_the_failed_ones() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    // Fails its first two builds, then passes.
    project(&server, &alice, "flaky", "version: 0.2\nphases:\n  build:\n    commands:\n      - test $CODEBUILD_BUILD_NUMBER -ge 3\n").await;
    let stage =
        json!({"name": "Build", "actions": [build("Good", "web-build"), build("Flaky", "flaky")]});
    let d = json!({"pipeline": {"name": "two", "stages": [source(), stage]}});
    let (s, b) = api(&server, &alice, Method::POST, "/pipelines", Some(d)).await;
    assert_eq!(s, 201, "{b}");
    let id = start(&server, &alice, "two", json!({})).await;
    let path = format!("/pipelines/two/executions/{id}");
    let failed = |e: &Value| e["status"] == "Failed";
    let e = wait_until(&server, &alice, "two", &id, "the failure", failed).await;
    let good = e["stages"][1]["actions"][0]["build_id"].clone();
    assert_eq!(e["stages"][1]["actions"][0]["status"], "Succeeded");

    // FAILED_ACTIONS: only Flaky runs again (and fails again).
    let (s, b) = api(
        &server,
        &alice,
        Method::POST,
        &format!("{path}/retry"),
        Some(json!({"stage": "Build", "mode": "FAILED_ACTIONS"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let e = wait_until(&server, &alice, "two", &id, "the second failure", |e| {
        failed(e) && builds_ran(e, 1) >= 1
    })
    .await;
    assert_eq!(
        e["stages"][1]["actions"][0]["build_id"], good,
        "Good kept its build"
    );
    assert_eq!(builds_of(&server, &alice, "flaky").await, 2);

    // ALL_ACTIONS: both run again, and the stage passes.
    let (s, b) = api(
        &server,
        &alice,
        Method::POST,
        &format!("{path}/retry"),
        Some(json!({"stage": "Build", "mode": "ALL_ACTIONS"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let e = ended(&server, &alice, "two", &id).await;
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_ne!(
        e["stages"][1]["actions"][0]["build_id"], good,
        "Good ran again"
    );
    assert_eq!(builds_of(&server, &alice, "flaky").await, 3);
    assert_eq!(builds_of(&server, &alice, "web-build").await, 2);
}

/// Whether the stage's action `ai` has a build (it has run).
fn builds_ran(e: &Value, ai: usize) -> usize {
    usize::from(e["stages"][1]["actions"][ai]["build_id"].is_string())
}
