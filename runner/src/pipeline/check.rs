//! Reading and checking a pipeline declaration. Every problem has a path
//! (`pipeline.stages[1].actions[0].name`) and a position, errors and
//! warnings apart; the model is answered only when there is no error.

use std::collections::{BTreeMap, HashSet};

use super::read::{Placed, Reader, PIPELINE_KEYS, STAGE_KEYS};
use super::*;
use crate::yaml::{self, Node, Pos, Value};

/// An action of the stage being checked: read, with its path and place.
type Checking = (Action, Vec<Placed>, Vec<Placed>, String, Pos);

/// One problem: where, and what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub path: String,
    #[serde(skip)]
    pub pos: Pos,
    pub message: String,
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    pub pipeline: Option<Pipeline>,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// Finds the declaration in what was given: `{"pipeline": …}` as
/// get-pipeline prints it, the declaration itself, or a CloudFormation
/// template (its first `AWS::CodePipeline::Pipeline`; the logical id names
/// it when it has no `Name`). Answers (node, PascalCase?, default name, path).
fn locate(root: &Node) -> Result<(&Node, bool, Option<String>, String), String> {
    let Value::Map(pairs) = &root.value else {
        return Err(format!("a pipeline must be a mapping, not {}", root.kind()));
    };
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key.as_str() == Some(k))
            .map(|(_, v)| v)
    };
    if let Some(resources) = get("Resources") {
        let Value::Map(res) = &resources.value else {
            return Err("Resources must be a mapping".into());
        };
        for (id, r) in res {
            let Value::Map(fields) = &r.value else {
                continue;
            };
            let field = |k: &str| {
                fields
                    .iter()
                    .find(|(key, _)| key.as_str() == Some(k))
                    .map(|(_, v)| v)
            };
            if field("Type").and_then(Node::as_str) == Some("AWS::CodePipeline::Pipeline") {
                let id = id.as_str().unwrap_or("Pipeline").to_string();
                let props =
                    field("Properties").ok_or(format!("Resources.{id} has no Properties"))?;
                return Ok((
                    props,
                    true,
                    Some(id.clone()),
                    format!("Resources.{id}.Properties"),
                ));
            }
        }
        return Err("the template has no AWS::CodePipeline::Pipeline resource".into());
    }
    match get("pipeline") {
        Some(p) => Ok((p, false, None, "pipeline".into())),
        None => Ok((root, false, None, "pipeline".into())),
    }
}

/// Reads and checks a declaration (JSON or YAML). `params` resolve a
/// CloudFormation template's `!Ref`/`!Sub`.
pub fn check(text: &str, params: &BTreeMap<String, String>) -> Checked {
    let mut r = Reader {
        pascal: false,
        params,
        out: Checked::default(),
    };
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            r.error("", e.pos, e.message);
            return r.out;
        }
    };
    let (node, pascal, default_name, top) = match locate(&root) {
        Ok(found) => found,
        Err(message) => {
            r.error("", root.pos, message);
            return r.out;
        }
    };
    r.pascal = pascal;
    let Some(e) = r.entries(node, &top, PIPELINE_KEYS) else {
        return r.out;
    };
    let name = match (e.get("name"), default_name) {
        (None, Some(id)) => id,
        (n, _) => r.name(n, &top, node.pos, "a pipeline"),
    };
    let push_filters = match e.get("triggers") {
        Some(t) => r.triggers(t, &format!("{top}.triggers")),
        None => Vec::new(),
    };
    let execution_mode = match e.get("executionMode") {
        None => "SUPERSEDED".to_string(),
        Some(n) => {
            let mode = r
                .scalar(n, &format!("{top}.executionMode"))
                .unwrap_or_default();
            if !["SUPERSEDED", "QUEUED", "PARALLEL"].contains(&mode.as_str()) {
                r.error(
                    &format!("{top}.executionMode"),
                    n.pos,
                    format!("executionMode {mode:?} is not SUPERSEDED, QUEUED or PARALLEL"),
                );
            }
            mode
        }
    };
    let mut variables = Vec::new();
    for (i, v) in r
        .list(e.get("variables"), &format!("{top}.variables"), node.pos)
        .iter()
        .enumerate()
    {
        let p = format!("{top}.variables[{i}]");
        if let Some(f) = r.entries(v, &p, &["name", "defaultValue", "description"]) {
            let name = r.name(f.get("name"), &p, v.pos, "a variable");
            let default_value = f
                .get("defaultValue")
                .and_then(|n| r.scalar(n, &p))
                .unwrap_or_default();
            let description = f
                .get("description")
                .and_then(|n| r.scalar(n, &p))
                .unwrap_or_default();
            variables.push(Variable {
                name,
                default_value,
                description,
            });
        }
    }
    let stage_nodes = r.list(e.get("stages"), &format!("{top}.stages"), node.pos);
    if stage_nodes.len() < 2 {
        r.error(
            &format!("{top}.stages"),
            node.pos,
            format!(
                "a pipeline needs at least 2 stages, not {}",
                stage_nodes.len()
            ),
        );
    }
    if stage_nodes.len() > MAX_STAGES {
        r.error(
            &format!("{top}.stages"),
            node.pos,
            format!("at most {MAX_STAGES} stages, not {}", stage_nodes.len()),
        );
        return r.out;
    }
    let mut stages = Vec::new();
    let mut stage_names = HashSet::new();
    let mut produced: HashSet<String> = HashSet::new();
    let mut namespaces: HashSet<String> = HashSet::new();
    for (si, s) in stage_nodes.iter().enumerate() {
        let sp = format!("{top}.stages[{si}]");
        let Some(f) = r.entries(s, &sp, STAGE_KEYS) else {
            continue;
        };
        let sname = r.name(f.get("name"), &sp, s.pos, "a stage");
        let before_entry = f
            .get("beforeEntry")
            .and_then(|n| r.conditions(n, &format!("{sp}.beforeEntry"), &["FAIL", "SKIP"]));
        let on_success = f
            .get("onSuccess")
            .and_then(|n| r.conditions(n, &format!("{sp}.onSuccess"), &["FAIL", "ROLLBACK"]));
        let on_failure = f
            .get("onFailure")
            .and_then(|n| r.on_failure(n, &format!("{sp}.onFailure")));
        let rolls_back = on_failure.as_ref().is_some_and(|o| o.result == "ROLLBACK")
            || on_success
                .as_ref()
                .is_some_and(|c| c.conditions.iter().any(|c| c.result == "ROLLBACK"));
        if rolls_back && si == 0 {
            r.error(&sp, s.pos, "a source stage cannot be rolled back");
        } else if rolls_back && execution_mode == "PARALLEL" {
            r.error(&sp, s.pos, "PARALLEL executions have no stage rollback");
        }
        if !stage_names.insert(sname.clone()) {
            r.error(
                &format!("{sp}.name"),
                s.pos,
                format!("there is already a stage named {sname:?}"),
            );
        }
        let action_nodes = r.list(f.get("actions"), &format!("{sp}.actions"), s.pos);
        if action_nodes.is_empty() {
            r.error(
                &format!("{sp}.actions"),
                s.pos,
                "a stage needs at least one action",
            );
        }
        if action_nodes.len() > MAX_ACTIONS_PER_STAGE {
            r.error(
                &format!("{sp}.actions"),
                s.pos,
                format!(
                    "at most {MAX_ACTIONS_PER_STAGE} actions in a stage, not {}",
                    action_nodes.len()
                ),
            );
            continue;
        }
        let mut actions: Vec<Checking> = Vec::new();
        let mut action_names = HashSet::new();
        for (ai, a) in action_nodes.iter().enumerate() {
            let ap = format!("{sp}.actions[{ai}]");
            let Some((action, ins, outs)) = r.action(a, &ap) else {
                continue;
            };
            if !action_names.insert(action.name.clone()) {
                r.error(
                    &format!("{ap}.name"),
                    a.pos,
                    format!(
                        "there is already an action named {:?} in this stage",
                        action.name
                    ),
                );
            }
            let source = action.action_type_id.category == "Source";
            if si == 0 && !source {
                r.error(&ap, a.pos, "the first stage may hold only Source actions");
            } else if si > 0 && source {
                r.error(&ap, a.pos, "Source actions belong in the first stage only");
            }
            match action.runs() {
                Runs::NotHere => r.warn(
                    &ap,
                    a.pos,
                    format!("not runnable here: {}", action.action_type_id.provider),
                ),
                Runs::Source
                    if action
                        .config("RepositoryName")
                        .or(action.config("FullRepositoryId"))
                        .is_none() =>
                {
                    r.error(
                        &format!("{ap}.configuration"),
                        a.pos,
                        "a source action needs RepositoryName (a Nubo repository)",
                    )
                }
                Runs::Deploy
                    if action.config("ApplicationName").is_none()
                        || action.config("DeploymentGroupName").is_none() =>
                {
                    r.error(
                        &format!("{ap}.configuration"),
                        a.pos,
                        "a CodeDeploy action needs ApplicationName and DeploymentGroupName (a Nubo application and deployment group)",
                    )
                }
                Runs::Deploy if ins.len() != 1 => r.error(
                    &format!("{ap}.inputArtifacts"),
                    a.pos,
                    "a CodeDeploy action takes exactly one input artifact: the revision it deploys",
                ),
                Runs::Build if action.config("ProjectName").is_none() => r.error(
                    &format!("{ap}.configuration"),
                    a.pos,
                    "a CodeBuild action needs ProjectName (a Nubo build project)",
                ),
                _ => {}
            }
            actions.push((action, ins, outs, ap, a.pos));
        }
        // Inputs come from earlier stages, or earlier runOrders here.
        let mut orders: Vec<u32> = actions.iter().map(|a| a.0.run_order).collect();
        orders.sort_unstable();
        orders.dedup();
        for order in orders {
            for (action, ins, _, ap, pos) in actions.iter().filter(|a| a.0.run_order == order) {
                for (i, (art, apos)) in ins.iter().enumerate() {
                    if !produced.contains(&art.name) {
                        r.error(
                            &format!("{ap}.inputArtifacts[{i}]"),
                            *apos,
                            format!(
                                "input artifact {:?} is not the output of an earlier action",
                                art.name
                            ),
                        );
                    }
                }
                for (key, value) in &action.configuration {
                    for (ns, _) in references(value) {
                        if ns == "codepipeline" || ns == "variables" || namespaces.contains(&ns) {
                            continue;
                        }
                        let own = action.namespace.as_deref() == Some(ns.as_str());
                        let why = if own {
                            "its own namespace: an action cannot read its own outputs"
                        } else {
                            "no earlier action has that namespace"
                        };
                        r.error(
                            &format!("{ap}.configuration.{key}"),
                            *pos,
                            format!("#{{{ns}.…}} refers to {why}"),
                        );
                    }
                }
            }
            for (action, _, outs, ap, _) in actions.iter().filter(|a| a.0.run_order == order) {
                for (i, (art, apos)) in outs.iter().enumerate() {
                    if !produced.insert(art.name.clone()) {
                        r.error(
                            &format!("{ap}.outputArtifacts[{i}]"),
                            *apos,
                            format!(
                                "output artifact {:?} is already made by another action",
                                art.name
                            ),
                        );
                    }
                }
                if let Some(ns) = &action.namespace {
                    if !namespaces.insert(ns.clone()) {
                        r.error(
                            &format!("{ap}.namespace"),
                            *apos_of(&actions, ap),
                            format!("namespace {ns:?} is already used"),
                        );
                    }
                }
            }
        }
        stages.push(Stage {
            name: sname,
            actions: actions.into_iter().map(|a| a.0).collect(),
            before_entry,
            on_success,
            on_failure,
        });
    }
    if r.out.errors.is_empty() {
        r.out.pipeline = Some(Pipeline {
            name,
            stages,
            execution_mode,
            variables,
            push_filters,
        });
    }
    r.out
}

fn apos_of<'a>(actions: &'a [Checking], path: &str) -> &'a Pos {
    &actions.iter().find(|a| a.3 == path).expect("listed").4
}
