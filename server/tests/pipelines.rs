//! Pipelines' declarations: refused with their places and changing
//! nothing, `nubo pipeline check`'s output and exit status, and the CLI's
//! import, start and approval.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn bad_declarations_are_refused_with_their_places_and_change_nothing() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    let mut bad = declaration("web");
    bad["pipeline"]["stages"][1]["actions"][0]["name"] = json!("Com/pile");
    bad["pipeline"]["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Nowhere"}]);
    let (s, body) = api(&server, &alice, Method::POST, "/pipelines", Some(bad)).await;
    assert_eq!(s, 422, "{body}");
    let paths: Vec<&str> = body["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"pipeline.stages[1].actions[0].name"),
        "{body:#}"
    );
    assert!(
        paths.contains(&"pipeline.stages[1].actions[0].inputArtifacts[0]"),
        "{body:#}"
    );
    assert!(body["error"]["problems"][0]["line"].as_u64().unwrap() > 0);
    // Another user's build project and repository are not theirs to run.
    let bob = server.user_with_token("bob", false);
    let (s, body) = api(
        &server,
        &bob,
        Method::POST,
        "/pipelines",
        Some(declaration("stolen")),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    let text = body["error"]["message"].as_str().unwrap();
    assert!(
        text.contains("no build project of yours named \"web-build\"")
            && text.contains("repository \"web\""),
        "{text}"
    );
    let (_, list) = api(&server, &alice, Method::GET, "/pipelines", None).await;
    assert_eq!(list, json!([]));
    // Unrunnable providers are kept, with a warning.
    let mut ecs = declaration("web");
    ecs["pipeline"]["stages"].as_array_mut().unwrap().push(json!({"name": "Deploy", "actions": [{"name": "Ecs",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"}}]}));
    let (s, body) = api(&server, &alice, Method::POST, "/pipelines", Some(ecs)).await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(body["warnings"][0]["message"], "not runnable here: ECS");
    let (s, body) = api(&server, &alice, Method::GET, "/pipelines/web", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        body["pipeline"]["stages"][3]["actions"][0]["actionTypeId"]["provider"],
        "ECS"
    );
    let (s, _) = api(&server, &bob, Method::GET, "/pipelines/web", None).await;
    assert_eq!(s, 404, "another user's pipeline is not theirs to see");
}

#[test]
fn pipeline_check_answers_file_line_col_and_its_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = dir.join("pipeline.json");
    let mut decl = declaration("web");
    decl["pipeline"]["stages"].as_array_mut().unwrap().push(json!({"name": "Deploy", "actions": [{"name": "Stack",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"}}]}));
    std::fs::write(&good, serde_json::to_string_pretty(&decl).unwrap()).unwrap();
    let out = cli(dir, &["pipeline", "check", good.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .contains("warning: pipeline.stages[3].actions[0]: not runnable here: CloudFormation"),
        "{stderr}"
    );
    assert!(stderr.contains("valid: pipeline web, 4 stages"), "{stderr}");
    // YAML with two mistakes: each with FILE:LINE:COL.
    let bad = dir.join("pipeline.yml");
    std::fs::write(
        &bad,
        "pipeline:\n  name: web\n  stages:\n    - name: Source\n      actions:\n        - name: Code\n          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: '1'}\n          configuration: {ProjectName: p}\n          runOrder: 0\n",
    )
    .unwrap();
    let out = cli(dir, &["pipeline", "check", bad.to_str().unwrap()], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let name = bad.display();
    for line in [
        format!("{name}:2:3: error: pipeline.stages: a pipeline needs at least 2 stages, not 1"),
        format!("{name}:9:21: error: pipeline.stages[0].actions[0].runOrder: runOrder must be a whole number from 1 to 999"),
        format!("{name}:6:11: error: pipeline.stages[0].actions[0]: the first stage may hold only Source actions"),
    ] {
        assert!(stderr.lines().any(|l| l == line), "{line}\n{stderr}");
    }
    let out = cli(dir, &["pipeline", "check", "--help"], None);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("nubo pipeline check template.yml --param Repo=app"));
}

#[tokio::test]
async fn the_cli_imports_a_codestar_pipeline_starts_it_and_answers_its_approval() {
    let server = Server::start(&[]);
    let alice = setup(&server).await;
    server.user_with_token("bob", false);
    let mut decl = declaration("web");
    decl["pipeline"]["stages"][0]["actions"][0]["actionTypeId"]["provider"] =
        json!("CodeStarSourceConnection");
    decl["pipeline"]["stages"][0]["actions"][0]["configuration"] = json!({"ConnectionArn": "arn:aws:codestar-connections:eu-west-1:1:connection/x", "FullRepositoryId": "acme/website", "BranchName": "main"});
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("web.json");
    std::fs::write(&file, decl.to_string()).unwrap();
    let f = file.to_str().unwrap();
    // Without --repo it names "website", which is not here.
    let out = server.cli(&["pipeline", "import", f, "--owner", "alice"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("repository \"website\""),
        "{out:?}"
    );
    let out = server.cli(
        &["pipeline", "import", f, "--owner", "alice", "--repo", "web"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let out = server.cli(&["pipeline", "start", "web", "--by", "alice"], None);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    wait_until(&server, &alice, "web", &id, "the approval", |e| {
        action(e, 2)["status"] == "InProgress"
    })
    .await;
    let approve = |user: &'static str| {
        server.cli(
            &[
                "pipeline",
                "approve",
                "web",
                &id,
                "--stage",
                "Approve",
                "--action",
                "Gate",
                "--as",
                user,
                "--comment",
                "cli",
            ],
            None,
        )
    };
    let out = approve("bob");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("codepipeline:PutApprovalResult"),
        "{out:?}"
    );
    assert!(approve("alice").status.success());
    let e = wait_until(&server, &alice, "web", &id, "the end", |e| {
        e["status"] != "InProgress"
    })
    .await;
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    let out = server.cli(&["pipeline", "status", "web"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("(Succeeded)") && text.contains("Gate Succeeded approved by alice: cli"),
        "{text}"
    );
}
