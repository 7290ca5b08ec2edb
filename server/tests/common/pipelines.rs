//! Pipelines in the tests: a declaration of source → build → approval,
//! its set-up, and waiting on an execution.

use super::*;
use reqwest::Method;
use serde_json::{json, Value};

pub const SPEC: &str = "version: 0.2\nenv:\n  exported-variables: [VERSION]\nphases:\n  build:\n    commands:\n      - echo commit=$COMMIT\n      - export VERSION=1.$CODEBUILD_BUILD_NUMBER\n";

pub fn declaration(name: &str) -> Value {
    json!({"pipeline": {
    "name": name,
    "roleArn": "arn:aws:iam::111111111111:role/ignored",
    "artifactStore": {"type": "S3", "location": "ignored"},
    "stages": [
        {"name": "Source", "actions": [{"name": "Code",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "web", "BranchName": "main"},
            "outputArtifacts": [{"name": "Src"}], "namespace": "SourceVariables"}]},
        {"name": "Build", "actions": [{"name": "Compile",
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {"ProjectName": "web-build",
                "EnvironmentVariables": "[{\"name\":\"COMMIT\",\"value\":\"#{SourceVariables.CommitId}\",\"type\":\"PLAINTEXT\"}]"},
            "inputArtifacts": [{"name": "Src"}], "namespace": "BuildVariables"}]},
        {"name": "Approve", "actions": [{"name": "Gate",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
            "configuration": {"CustomData": "Ship #{BuildVariables.VERSION}?"}}]}
    ]}})
}

pub async fn execution(server: &Server, token: &str, pipeline: &str, id: &str) -> Value {
    api(
        server,
        token,
        Method::GET,
        &format!("/pipelines/{pipeline}/executions/{id}"),
        None,
    )
    .await
    .1
}

/// Waits until `done` holds for the execution; answers it.
pub async fn wait_until(
    server: &Server,
    token: &str,
    pipeline: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut e = Value::Null;
    for _ in 0..600 {
        e = execution(server, token, pipeline, id).await;
        if done(&e) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never happened: {e:#}");
}

pub fn action(e: &Value, stage: usize) -> &Value {
    &e["stages"][stage]["actions"][0]
}

pub async fn setup(server: &Server) -> String {
    let alice = server.user_with_token("alice", false);
    create_repo(server, &alice, "web").await;
    push(server, &alice, "web", &[("README.md", "# web\n")]).await;
    let (s, p) = api(
        server,
        &alice,
        Method::POST,
        "/projects",
        Some(json!({"name": "web-build", "repo": "web", "buildspec": SPEC})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    alice
}

/// A build project of `web` with an inline buildspec.
pub async fn project(server: &Server, token: &str, name: &str, spec: &str) {
    let (s, p) = api(
        server,
        token,
        Method::POST,
        "/projects",
        Some(json!({"name": name, "repo": "web", "buildspec": spec})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
}
