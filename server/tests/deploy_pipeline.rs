//! A pipeline's CodeDeploy action: push → build → deploy, on a real agent.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const BUILD: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out/site\n      - cp -r deploy/. out/\n      - echo \"version $(cat VERSION)\" > out/site/index.html\nartifacts:\n  files: ['**/*']\n  base-directory: out\n";

fn declaration(app: &str) -> Value {
    json!({"pipeline": {
    "name": "web",
    "roleArn": "arn:aws:iam::111111111111:role/ignored",
    "artifactStore": {"type": "S3", "location": "ignored"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Code",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "web", "BranchName": "main"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [{"name": "Compile",
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {"ProjectName": "web-build"},
            "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Site"}]}]},
        {"name": "Deploy", "actions": [{"name": "Ship",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeploy", "version": "1"},
            "configuration": {"ApplicationName": app, "DeploymentGroupName": "test"},
            "inputArtifacts": [{"name": "Site"}]}]}
    ]}})
}

async fn latest(server: &Server, token: &str, after: usize) -> Value {
    for _ in 0..1200 {
        let (_, list) = api(
            server,
            token,
            Method::GET,
            "/pipelines/web/executions",
            None,
        )
        .await;
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() > after {
            let id = list[0]["id"].as_str().unwrap().to_string();
            return wait_until(server, token, "web", &id, "the execution's end", |e| {
                e["status"] != "InProgress"
            })
            .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no execution started");
}

#[tokio::test]
async fn a_push_builds_then_deploys_and_the_target_runs_the_new_version() {
    let server = Server::start(&[]);
    let (alice, agent_token) = deploy_setup(&server).await;
    create_repo(&server, &alice, "web").await;
    project(&server, &alice, "web-build", BUILD).await;
    let dest = tempfile::tempdir().unwrap();
    let site = dest.path().join("site");
    let _t = Target::start_confined(&server, &agent_token, "t1", "env=test", dest.path());
    wait_online(&server, &alice, 1).await;
    app_and_group(
        &server,
        &alice,
        "shop",
        "test",
        "CodeDeployDefault.OneAtATime",
        false,
    )
    .await;
    let (s, p) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines",
        Some(declaration("shop")),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    let appspec = format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: site\n    destination: {}\nfile_exists_behavior: OVERWRITE\nhooks:\n  ValidateService:\n    - location: scripts/check.sh\n",
        site.display()
    );
    let files = |version: &str| {
        vec![
            ("VERSION".to_string(), version.to_string()),
            ("deploy/appspec.yml".to_string(), appspec.clone()),
            (
                "deploy/scripts/check.sh".to_string(),
                format!(
                    "#!/bin/sh\ngrep -q 'version {version}' {}/index.html\n",
                    site.display()
                ),
            ),
        ]
    };
    for (n, version) in ["1", "2"].into_iter().enumerate() {
        let f = files(version);
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        push(&server, &alice, "web", &refs).await;
        let e = latest(&server, &alice, n).await;
        assert_eq!(e["status"], "Succeeded", "{e:#}");
        let ship = action(&e, 2);
        let summary = ship["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("deployment d-") && summary.ends_with("succeeded"),
            "{e:#}"
        );
        assert_eq!(
            std::fs::read_to_string(site.join("index.html"))
                .unwrap()
                .trim(),
            format!("version {version}")
        );
        let id = summary.split_whitespace().nth(1).unwrap();
        let d = deployment(&server, &alice, id).await;
        assert_eq!(
            (d["creator"].as_str(), d["revision"]["build_id"].is_string()),
            (Some("pipeline"), true),
            "{d:#}"
        );
    }

    // A Deploy action naming a group the pipeline's user has not got fails
    // the execution clearly.
    let mut other = declaration("nope");
    other["pipeline"]["name"] = json!("web2");
    let (s, p) = api(&server, &alice, Method::POST, "/pipelines", Some(other)).await;
    assert_eq!(s, 201, "{p}");
    let (s, b) = api(
        &server,
        &alice,
        Method::POST,
        "/pipelines/web2/executions",
        Some(json!({"ref": "main"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let e = wait_until(
        &server,
        &alice,
        "web2",
        b["id"].as_str().unwrap(),
        "the end",
        |e| e["status"] != "InProgress",
    )
    .await;
    assert_eq!(e["status"], "Failed", "{e:#}");
    assert!(
        action(&e, 2)["summary"]
            .as_str()
            .unwrap()
            .contains("no application named \"nope\""),
        "{e:#}"
    );
}
