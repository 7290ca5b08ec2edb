use std::collections::BTreeMap;

use super::*;

/// As `aws codepipeline get-pipeline` prints it (written for these tests
/// from AWS's documented shape).
const GET_PIPELINE: &str = r##"{
  "pipeline": {
    "name": "web",
    "roleArn": "arn:aws:iam::111111111111:role/pipeline",
    "artifactStore": {"type": "S3", "location": "bucket"},
    "stages": [
      {"name": "Source", "actions": [{
        "name": "Code", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "runOrder": 1, "configuration": {"RepositoryName": "web", "BranchName": "main", "PollForSourceChanges": "false"},
        "outputArtifacts": [{"name": "SourceOutput"}], "namespace": "SourceVariables"}]},
      {"name": "Build", "actions": [{
        "name": "Compile", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "runOrder": 1, "configuration": {"ProjectName": "web-build", "EnvironmentVariables": "[{\"name\":\"COMMIT\",\"value\":\"#{SourceVariables.CommitId}\",\"type\":\"PLAINTEXT\"}]"},
        "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": [{"name": "BuildOutput"}], "namespace": "BuildVariables"}]},
      {"name": "Approve", "actions": [{
        "name": "Gate", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
        "configuration": {"CustomData": "Ship #{BuildVariables.VERSION}?"}}]},
      {"name": "Deploy", "actions": [{
        "name": "Ecs", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
        "inputArtifacts": [{"name": "BuildOutput"}], "configuration": {"ClusterName": "c"}}]}
    ],
    "version": 3, "pipelineType": "V2", "executionMode": "QUEUED"
  },
  "metadata": {"pipelineArn": "arn:aws:codepipeline:eu-west-1:111111111111:web"}
}"##;

fn none() -> BTreeMap<String, String> {
    BTreeMap::new()
}

#[test]
fn get_pipeline_json_reads_unchanged_and_unrunnable_providers_are_warnings() {
    let c = check(GET_PIPELINE, &none());
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let p = c.pipeline.unwrap();
    assert_eq!(p.name, "web");
    assert_eq!(p.execution_mode, "QUEUED");
    assert_eq!(p.stages.len(), 4);
    assert_eq!(p.source(), Some(("web", "main")));
    assert_eq!(p.stages[1].actions[0].runs(), Runs::Build);
    assert_eq!(p.stages[2].actions[0].runs(), Runs::Approval);
    assert_eq!(p.stages[3].actions[0].runs(), Runs::NotHere);
    let w: Vec<_> = c
        .warnings
        .iter()
        .map(|w| (w.path.as_str(), w.message.as_str()))
        .collect();
    assert_eq!(
        w,
        vec![("pipeline.stages[3].actions[0]", "not runnable here: ECS")]
    );
    assert_eq!(c.warnings[0].pos.line, 18);
}

#[test]
fn a_cloudformation_template_reads_with_its_parameters() {
    let template = "AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Repo: {Type: String}
Resources:
  AppPipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      RoleArn: !GetAtt Role.Arn
      Stages:
        - Name: Source
          Actions:
            - Name: Code
              ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: '1'}
              Configuration:
                RepositoryName: !Ref Repo
                BranchName: !Sub '${Branch}'
              OutputArtifacts: [{Name: Src}]
        - Name: Build
          Actions:
            - Name: Make
              ActionTypeId: {Category: Build, Owner: AWS, Provider: CodeBuild, Version: '1'}
              RunOrder: 2
              Configuration: {ProjectName: app-build}
              InputArtifacts: [{Name: Src}]
";
    // Without parameters, each unresolved intrinsic is reported at its
    // line (RoleArn, which Nubo ignores, is not read).
    let c = check(template, &none());
    let msgs: Vec<_> = c
        .errors
        .iter()
        .map(|e| format!("{}:{}: {}", e.pos.line, e.path, e.message))
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("15:") && m.contains("!Ref Repo is not resolved")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("16:") && m.contains("${Branch}")),
        "{msgs:?}"
    );
    let params: BTreeMap<String, String> = [("Repo", "app"), ("Branch", "release")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    let c = check(template, &params);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    let p = c.pipeline.unwrap();
    assert_eq!(p.name, "AppPipeline", "the logical id names it");
    assert_eq!(p.source(), Some(("app", "release")));
    assert_eq!(p.stages[1].actions[0].run_order, 2);
    assert_eq!(p.execution_mode, "SUPERSEDED");
}

fn errors_of(text: &str) -> Vec<String> {
    check(text, &none())
        .errors
        .into_iter()
        .map(|e| format!("{} {}", e.path, e.message))
        .collect()
}

#[test]
fn broken_declarations_say_what_and_where() {
    let one_stage = r#"{"name": "x", "stages": [{"name": "S", "actions": [{"name": "a",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "r"}}]}]}"#;
    assert!(errors_of(one_stage)
        .iter()
        .any(|e| e.contains("at least 2 stages")));
    let bad = GET_PIPELINE
        .replace(r#""name": "Compile""#, r#""name": "Com/pile""#)
        .replace(
            r#""inputArtifacts": [{"name": "BuildOutput"}]"#,
            r#""inputArtifacts": [{"name": "Nowhere"}]"#,
        )
        .replace(
            r#""runOrder": 1, "configuration": {"RepositoryName""#,
            r#""runOrder": 0, "configuration": {"RepositoryName""#,
        )
        .replace(r#""version": 3,"#, r#""version": 3, "colour": "blue","#)
        .replace(r#""name": "Approve""#, r#""name": "Build""#);
    let e = errors_of(&bad);
    for expected in [
        "pipeline.stages[1].actions[0].name an action name \"Com/pile\" is not allowed",
        "pipeline.stages[3].actions[0].inputArtifacts[0] input artifact \"Nowhere\" is not the output of an earlier action",
        "pipeline.stages[0].actions[0].runOrder runOrder must be a whole number from 1 to 999",
        "pipeline.colour unknown key \"colour\"",
        "pipeline.stages[2].name there is already a stage named \"Build\"",
    ] {
        assert!(e.iter().any(|x| x.starts_with(expected)), "{expected}\n{e:#?}");
    }
    // A build in the first stage, a source later, variables of nobody.
    let misplaced = GET_PIPELINE
        .replace(r#""category": "Approval""#, r#""category": "Source""#)
        .replace("#{BuildVariables.VERSION}", "#{Nobody.X}")
        .replace(
            r##""value\":\"#{SourceVariables.CommitId}\""##,
            r##""value\":\"#{BuildVariables.X}\""##,
        );
    let e = errors_of(&misplaced);
    assert!(
        e.iter()
            .any(|x| x
                .contains("stages[2].actions[0] Source actions belong in the first stage only")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|x| x.contains("#{Nobody.…} refers to no earlier action")),
        "{e:#?}"
    );
    assert!(
        e.iter()
            .any(|x| x.contains("#{BuildVariables.…} refers to its own namespace")),
        "{e:#?}"
    );
}

#[test]
fn hostile_input_is_refused_quickly() {
    let mut actions = String::new();
    for i in 0..10_000 {
        actions.push_str(&format!(r#"{{"name": "a{i}", "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}}, "configuration": {{"ProjectName": "p"}}}},"#));
    }
    actions.pop();
    let huge = format!(
        r#"{{"name": "x", "stages": [{{"name": "S", "actions": [{actions}]}}, {{"name": "B", "actions": [{actions}]}}]}}"#
    );
    // Past a megabyte nothing is read; under it, 10,000 actions are
    // refused by the limit on actions per stage.
    let e = check(&huge, &none()).errors;
    assert!(
        e[0].message.contains("at most 1048576 are read"),
        "{:?}",
        &e[..1]
    );
    let short: String = huge.chars().take(0).collect::<String>()
        + &huge.replacen(
            &actions,
            &actions[..actions.len() / 4]
                .rsplit_once("},{")
                .map(|(a, _)| format!("{a}}}"))
                .unwrap(),
            2,
        );
    let e = check(&short, &none()).errors;
    assert!(
        e.iter().any(|p| p.message.contains("at most 50 actions")),
        "{:?}",
        &e[..1]
    );
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    assert!(check(bomb, &none()).errors[0].message.contains("YAML bomb"));
    assert!(!check("{", &none()).errors.is_empty());
}

#[test]
fn variables_are_found_and_substituted() {
    assert_eq!(
        references("x #{A.b} y #{codepipeline.PipelineExecutionId}"),
        vec![
            ("A".into(), "b".into()),
            ("codepipeline".into(), "PipelineExecutionId".into())
        ]
    );
    let out = substitute("#{A.b}-#{A.c}-#{", |ns, k| {
        (ns == "A" && k == "b").then(|| "1".to_string())
    });
    assert_eq!(out, "1-#{A.c}-#{");
}

#[test]
fn globs_match_as_path_filters_expect() {
    for (p, t) in [
        ("main", "main"),
        ("release/*", "release/1.0"),
        ("src/**", "src/a/b.rs"),
        ("src/**/x.rs", "src/x.rs"),
        ("**/*.md", "README.md"),
        ("**/*.md", "docs/a/b.md"),
        ("v?.*", "v1.2"),
    ] {
        assert!(glob(p, t), "{p} {t}");
    }
    for (p, t) in [
        ("release/*", "release/1/2"),
        ("src/*", "src/a/b"),
        ("v?", "v10"),
        ("main", "mainline"),
        ("*.md", "docs/a.md"),
    ] {
        assert!(!glob(p, t), "{p} {t}");
    }
    // A hostile pattern is still quick: memoised, not exponential.
    let started = std::time::Instant::now();
    assert!(!glob(&"*a".repeat(40), &"a".repeat(39)));
    assert!(glob(&"*a".repeat(40), &"a".repeat(60)));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn push_filters_decide_with_excludes_winning() {
    let pats = |i: &[&str], e: &[&str]| {
        Some(Patterns {
            includes: i.iter().map(|s| s.to_string()).collect(),
            excludes: e.iter().map(|s| s.to_string()).collect(),
        })
    };
    let filters = vec![
        PushFilter {
            branches: pats(&["main", "release/*"], &["release/old*"]),
            file_paths: pats(&["api/**"], &["api/**/*.md"]),
            ..Default::default()
        },
        PushFilter {
            tags: pats(&["v*"], &[]),
            ..Default::default()
        },
    ];
    let paths = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(decide(&filters, "refs/heads/main", &paths(&["api/x.rs"])).0);
    assert!(
        !decide(
            &filters,
            "refs/heads/main",
            &paths(&["api/README.md", "web/x"])
        )
        .0
    );
    assert!(decide(&filters, "refs/heads/release/2", &paths(&["api/y"])).0);
    assert!(
        !decide(&filters, "refs/heads/release/old-1", &paths(&["api/y"])).0,
        "excludes win"
    );
    assert_eq!(
        decide(&filters, "refs/tags/v1", &[]),
        (true, "filter 2: tag v1".to_string())
    );
    assert!(!decide(&filters, "refs/heads/dev", &paths(&["api/x"])).0);
}

#[test]
fn stage_conditions_are_read_with_their_results_and_rules_checked_in_place() {
    let yaml = "pipeline:
  name: web
  stages:
    - name: Source
      actions:
        - name: Code
          actionTypeId: {category: Source, owner: AWS, provider: CodeCommit, version: '1'}
          configuration: {RepositoryName: web, BranchName: main}
    - name: Deploy
      onFailure:
        result: RETRY
        retryConfiguration: {retryMode: ALL_ACTIONS}
      beforeEntry:
        conditions:
          - result: SKIP
            rules:
              - name: Window
                ruleTypeId: {category: Rule, owner: AWS, provider: DeploymentWindow, version: '1'}
                configuration: {Cron: '0 9 * * 1-5'}
      onSuccess:
        conditions:
          - result: SKIP
            rules: []
      actions:
        - name: Ship
          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: '1'}
          configuration: {ProjectName: p}
";
    let c = check(yaml, &none());
    let at = |path: &str| {
        c.errors
            .iter()
            .find(|e| e.path == path)
            .map(|e| (e.pos.line, e.message.clone()))
    };
    assert_eq!(
        at("pipeline.stages[1].onSuccess.conditions[0].result"),
        Some((22, "result \"SKIP\" is not one of FAIL, ROLLBACK".into()))
    );
    assert_eq!(
        at("pipeline.stages[1].onSuccess.conditions[0].rules").map(|e| e.1),
        Some("a condition has 1 to 5 rules, not 0".into())
    );
    assert!(c.warnings.iter().any(|w| w.path
        == "pipeline.stages[1].beforeEntry.conditions[0].rules[0]"
        && w.message
            .contains("not runnable here: rule DeploymentWindow")));
    // Valid once onSuccess is dropped: the conditions are kept as read.
    let fixed = yaml.split("      onSuccess:").next().unwrap().to_string()
        + "      actions:\n        - name: Ship\n          actionTypeId: {category: Build, owner: AWS, provider: CodeBuild, version: '1'}\n          configuration: {ProjectName: p}\n";
    let p = check(&fixed, &none()).pipeline.expect("valid");
    let stage = &p.stages[1];
    assert_eq!(
        stage.on_failure.as_ref().unwrap().retry_mode(),
        "ALL_ACTIONS"
    );
    let rule = &stage.before_entry.as_ref().unwrap().conditions[0].rules[0];
    assert_eq!(rule.rule_type_id.provider, "DeploymentWindow");
    assert!(
        !rule.evaluate(|t| t.to_string()).0,
        "a rule not run here does not pass"
    );
}

#[test]
fn a_codedeploy_action_runs_here_and_needs_its_group_and_one_input() {
    let deploy = GET_PIPELINE.replace(
        r#""provider": "ECS", "version": "1"},
        "inputArtifacts": [{"name": "BuildOutput"}], "configuration": {"ClusterName": "c"}"#,
        r#""provider": "CodeDeploy", "version": "1"},
        "inputArtifacts": [{"name": "BuildOutput"}], "configuration": {"ApplicationName": "shop", "DeploymentGroupName": "prod"}"#,
    );
    let c = check(&deploy, &none());
    assert!(
        c.errors.is_empty() && c.warnings.is_empty(),
        "{:?} {:?}",
        c.errors,
        c.warnings
    );
    assert_eq!(
        c.pipeline.unwrap().stages[3].actions[0].runs(),
        Runs::Deploy
    );
    let bare = deploy.replace(r#", "DeploymentGroupName": "prod""#, "");
    let c = check(&bare, &none());
    assert!(
        c.errors
            .iter()
            .any(|e| e.message.contains("DeploymentGroupName")),
        "{:?}",
        c.errors
    );
    let two = deploy.replace(r#"[{"name": "BuildOutput"}], "configuration": {"ApplicationName""#, r#"[{"name": "BuildOutput"}, {"name": "SourceOutput"}], "configuration": {"ApplicationName""#);
    let c = check(&two, &none());
    assert!(
        c.errors
            .iter()
            .any(|e| e.message.contains("exactly one input")),
        "{:?}",
        c.errors
    );
}
