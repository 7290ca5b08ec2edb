//! The reader under [`super::check`]: a declaration's mappings, scalars
//! (CloudFormation's `Ref` and `Fn::Sub` resolved), names, lists,
//! artifacts and actions, each problem recorded with its path and place.

use std::collections::{BTreeMap, HashMap};

use super::check::{Checked, Problem};
use super::*;
use crate::yaml::{Node, Pos, Value};

/// An artifact and where it was written.
pub(super) type Placed = (Artifact, Pos);
/// An action read, with its inputs and outputs.
pub(super) type ReadAction = (Action, Vec<Placed>, Vec<Placed>);

pub(super) struct Reader<'p> {
    /// CloudFormation's PascalCase keys.
    pub(super) pascal: bool,
    pub(super) params: &'p BTreeMap<String, String>,
    pub(super) out: Checked,
}

pub(super) const PIPELINE_KEYS: &[&str] = &[
    "name",
    "roleArn",
    "artifactStore",
    "artifactStores",
    "stages",
    "version",
    "pipelineType",
    "executionMode",
    "variables",
    "triggers",
    "restartExecutionOnUpdate",
    "disableInboundStageTransitions",
    "tags",
];
pub(super) const STAGE_KEYS: &[&str] = &[
    "name",
    "actions",
    "onFailure",
    "beforeEntry",
    "onSuccess",
    "blockers",
];
pub(super) const ACTION_KEYS: &[&str] = &[
    "name",
    "actionTypeId",
    "runOrder",
    "configuration",
    "inputArtifacts",
    "outputArtifacts",
    "namespace",
    "region",
    "roleArn",
    "timeoutInMinutes",
];
pub(super) const TYPE_KEYS: &[&str] = &["category", "owner", "provider", "version"];
pub(super) const CATEGORIES: &[&str] = &["Source", "Build", "Test", "Deploy", "Approval", "Invoke"];

impl Reader<'_> {
    pub(super) fn error(&mut self, path: &str, pos: Pos, message: impl Into<String>) {
        self.out.errors.push(Problem {
            path: path.into(),
            pos,
            message: message.into(),
        });
    }
    pub(super) fn warn(&mut self, path: &str, pos: Pos, message: impl Into<String>) {
        self.out.warnings.push(Problem {
            path: path.into(),
            pos,
            message: message.into(),
        });
    }

    /// A mapping's entries under their camelCase names; unknown keys are errors.
    pub(super) fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        known: &[&str],
    ) -> Option<HashMap<String, &'n Node>> {
        let Value::Map(pairs) = &node.value else {
            self.error(
                path,
                node.pos,
                format!("must be a mapping, not {}", node.kind()),
            );
            return None;
        };
        let mut out = HashMap::new();
        for (k, v) in pairs {
            let Some(key) = k.as_str() else { continue };
            let key = if self.pascal {
                camel(key)
            } else {
                key.to_string()
            };
            if !known.contains(&key.as_str()) {
                self.error(
                    &format!("{path}.{key}"),
                    k.pos,
                    format!("unknown key {key:?} (known: {})", known.join(", ")),
                );
                continue;
            }
            out.insert(key, v);
        }
        Some(out)
    }

    /// A scalar, with CloudFormation's `Ref` and `Fn::Sub` resolved from
    /// the parameters given.
    pub(super) fn scalar(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s, _) => Some(s.clone()),
            Value::Null => Some(String::new()),
            Value::Map(pairs) if pairs.len() == 1 => {
                let (k, v) = &pairs[0];
                let (name, arg) = (k.as_str().unwrap_or(""), v.as_str().unwrap_or(""));
                match name {
                    "Ref" => match self.params.get(arg) {
                        Some(value) => Some(value.clone()),
                        None => {
                            self.error(path, node.pos, format!("!Ref {arg} is not resolved: pass it as a parameter ({arg}=VALUE)"));
                            None
                        }
                    },
                    "Fn::Sub" if v.as_str().is_some() => {
                        let mut text = arg.to_string();
                        for (p, value) in self.params {
                            text = text.replace(&format!("${{{p}}}"), value);
                        }
                        if let Some(start) = text.find("${") {
                            let rest = &text[start + 2..];
                            let missing = rest.split('}').next().unwrap_or(rest).to_string();
                            self.error(path, node.pos, format!("!Sub refers to ${{{missing}}}, which is not resolved: pass it as a parameter"));
                            return None;
                        }
                        Some(text)
                    }
                    other => {
                        self.error(
                            path,
                            node.pos,
                            format!("{other} cannot be resolved here; write the value instead"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.error(
                    path,
                    node.pos,
                    format!("must be a string, not {}", node.kind()),
                );
                None
            }
        }
    }

    pub(super) fn name(&mut self, node: Option<&&Node>, path: &str, at: Pos, what: &str) -> String {
        let Some(node) = node else {
            self.error(path, at, format!("{what} needs a name"));
            return String::new();
        };
        let name = self
            .scalar(node, &format!("{path}.name"))
            .unwrap_or_default();
        if !valid_name(&name) {
            self.error(&format!("{path}.name"), node.pos,
                format!("{what} name {name:?} is not allowed: 1 to 100 letters, digits, '.', '@', '-' or '_'"));
        }
        name
    }

    pub(super) fn list<'n>(&mut self, node: Option<&&'n Node>, path: &str, at: Pos) -> &'n [Node] {
        match node.map(|n| &n.value) {
            Some(Value::Seq(items)) => items,
            Some(Value::Null) | None => &[],
            Some(_) => {
                self.error(path, node.map(|n| n.pos).unwrap_or(at), "must be a list");
                &[]
            }
        }
    }

    pub(super) fn artifacts(&mut self, node: Option<&&Node>, path: &str, at: Pos) -> Vec<Placed> {
        let mut out = Vec::new();
        for (i, item) in self.list(node, path, at).iter().enumerate() {
            let p = format!("{path}[{i}]");
            if let Some(e) = self.entries(item, &p, &["name"]) {
                let name = self.name(e.get("name"), &p, item.pos, "an artifact");
                out.push((Artifact { name }, item.pos));
            }
        }
        out
    }

    pub(super) fn action(&mut self, node: &Node, path: &str) -> Option<ReadAction> {
        let e = self.entries(node, path, ACTION_KEYS)?;
        let name = self.name(e.get("name"), path, node.pos, "an action");
        let type_path = format!("{path}.actionTypeId");
        let action_type_id = match e.get("actionTypeId") {
            None => {
                self.error(
                    &type_path,
                    node.pos,
                    "an action needs an actionTypeId (category, owner, provider, version)",
                );
                return None;
            }
            Some(t) => {
                let f = self.entries(t, &type_path, TYPE_KEYS)?;
                let get = |k: &str, r: &mut Self| {
                    f.get(k)
                        .and_then(|n| r.scalar(n, &format!("{type_path}.{k}")))
                };
                let category = get("category", self).unwrap_or_default();
                if !CATEGORIES.contains(&category.as_str()) {
                    self.error(
                        &format!("{type_path}.category"),
                        t.pos,
                        format!(
                            "category {category:?} is not one of {}",
                            CATEGORIES.join(", ")
                        ),
                    );
                }
                ActionType {
                    category,
                    owner: get("owner", self).unwrap_or_else(|| "AWS".into()),
                    provider: get("provider", self).unwrap_or_default(),
                    version: get("version", self).unwrap_or_else(|| "1".into()),
                }
            }
        };
        let run_order = match e.get("runOrder") {
            None => 1,
            Some(n) => match self
                .scalar(n, &format!("{path}.runOrder"))
                .map(|s| s.parse::<u32>())
            {
                Some(Ok(v)) if (1..=999).contains(&v) => v,
                _ => {
                    self.error(
                        &format!("{path}.runOrder"),
                        n.pos,
                        "runOrder must be a whole number from 1 to 999",
                    );
                    1
                }
            },
        };
        let mut configuration = BTreeMap::new();
        if let Some(c) = e.get("configuration") {
            if let Value::Map(pairs) = &c.value {
                for (k, v) in pairs {
                    let key = k.as_str().unwrap_or("").to_string();
                    if let Some(value) = self.scalar(v, &format!("{path}.configuration.{key}")) {
                        configuration.insert(key, value);
                    }
                }
            } else if !matches!(c.value, Value::Null) {
                self.error(
                    &format!("{path}.configuration"),
                    c.pos,
                    "configuration must be a mapping of strings",
                );
            }
        }
        let namespace = e
            .get("namespace")
            .and_then(|n| self.scalar(n, &format!("{path}.namespace")));
        if let Some(ns) = &namespace {
            if !valid_name(ns) || ns == "codepipeline" {
                self.error(
                    &format!("{path}.namespace"),
                    node.pos,
                    format!("namespace {ns:?} is not allowed"),
                );
            }
        }
        let inputs = self.artifacts(
            e.get("inputArtifacts"),
            &format!("{path}.inputArtifacts"),
            node.pos,
        );
        let outputs = self.artifacts(
            e.get("outputArtifacts"),
            &format!("{path}.outputArtifacts"),
            node.pos,
        );
        let timeout_in_minutes = match e.get("timeoutInMinutes") {
            None => None,
            Some(n) => {
                let p = format!("{path}.timeoutInMinutes");
                match self.scalar(n, &p).map(|s| s.parse::<u32>()) {
                    Some(Ok(v)) if (1..=MAX_APPROVAL_MINUTES).contains(&v) => {
                        if action_type_id.category != "Approval" {
                            self.warn(&p, n.pos, "timeoutInMinutes applies to manual approvals here; a build's timeout is its project's");
                        }
                        Some(v)
                    }
                    _ => {
                        self.error(
                            &p,
                            n.pos,
                            format!("timeoutInMinutes must be a whole number from 1 to {MAX_APPROVAL_MINUTES} (7 days)"),
                        );
                        None
                    }
                }
            }
        };
        let action = Action {
            name,
            action_type_id,
            run_order,
            configuration,
            input_artifacts: inputs.iter().map(|(a, _)| a.clone()).collect(),
            output_artifacts: outputs.iter().map(|(a, _)| a.clone()).collect(),
            namespace,
            timeout_in_minutes,
        };
        Some((action, inputs, outputs))
    }
}

/// `Stages` → `stages`, `ActionTypeId` → `actionTypeId`.
pub(super) fn camel(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(c) => c.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}
