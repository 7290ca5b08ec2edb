//! Stage conditions (CodePipeline V2): `beforeEntry` (result FAIL or SKIP),
//! `onSuccess` (result FAIL or ROLLBACK) and `onFailure` (result FAIL,
//! RETRY with `retryConfiguration.retryMode`, or ROLLBACK), each condition
//! with 1 to 5 rules; and the rule Nubo runs itself, `VariableCheck`
//! (`Variable`, `Value`, `Operator` EQ, NE or CONTAINS). Other rule
//! providers are kept and reported: a rule Nubo cannot run does not pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::read::Reader;
use super::Artifact;
use crate::yaml::{Node, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleType {
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub name: String,
    pub rule_type_id: RuleType,
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub result: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// `beforeEntry` and `onSuccess`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfiguration {
    pub retry_mode: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnFailure {
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_configuration: Option<RetryConfiguration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl OnFailure {
    /// `FAILED_ACTIONS` (the default) or `ALL_ACTIONS`.
    pub fn retry_mode(&self) -> &str {
        self.retry_configuration
            .as_ref()
            .map_or("FAILED_ACTIONS", |r| r.retry_mode.as_str())
    }
}

/// The operators VariableCheck takes here.
const OPERATORS: &[&str] = &["EQ", "NE", "CONTAINS"];
const MAX_RULES: usize = 5;

impl Rule {
    /// Whether the rule passes, and what it saw; `resolve` fills in
    /// `#{ns.key}` references.
    pub fn evaluate(&self, resolve: impl Fn(&str) -> String) -> (bool, String) {
        let provider = self.rule_type_id.provider.as_str();
        if provider != "VariableCheck" {
            return (
                false,
                format!("rule {}: not runnable here: {provider}", self.name),
            );
        }
        let get = |k: &str| self.configuration.get(k).map(String::as_str).unwrap_or("");
        let variable = resolve(get("Variable"));
        let value = resolve(get("Value"));
        let operator = match get("Operator") {
            "" => "EQ",
            other => other,
        };
        let pass = match operator {
            "EQ" => variable == value,
            "NE" => variable != value,
            "CONTAINS" => variable.contains(&value),
            other => {
                return (
                    false,
                    format!("rule {}: operator {other} is not supported here", self.name),
                )
            }
        };
        let word = if pass { "passed" } else { "failed" };
        (
            pass,
            format!(
                "rule {} {word}: {:?} {operator} {value:?}",
                self.name, variable
            ),
        )
    }
}

/// Every rule of every condition, in order: the first that does not pass
/// (with its condition's result and what it saw), or what they all saw.
pub fn first_failing(
    conditions: &[Condition],
    resolve: impl Fn(&str) -> String,
) -> Result<Vec<String>, (&Condition, String)> {
    let mut seen = Vec::new();
    for c in conditions {
        for r in &c.rules {
            let (pass, text) = r.evaluate(&resolve);
            if !pass {
                return Err((c, text));
            }
            seen.push(text);
        }
    }
    Ok(seen)
}

impl Reader<'_> {
    fn rules(&mut self, node: Option<&&Node>, path: &str, at: crate::yaml::Pos) -> Vec<Rule> {
        let items = self.list(node, path, at);
        if items.is_empty() || items.len() > MAX_RULES {
            self.error(
                path,
                node.map_or(at, |n| n.pos),
                format!(
                    "a condition has 1 to {MAX_RULES} rules, not {}",
                    items.len()
                ),
            );
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(e) = self.entries(
                item,
                &p,
                &[
                    "name",
                    "ruleTypeId",
                    "configuration",
                    "inputArtifacts",
                    "region",
                    "roleArn",
                    "timeoutInMinutes",
                    "commands",
                ],
            ) else {
                continue;
            };
            let name = self.name(e.get("name"), &p, item.pos, "a rule");
            let tp = format!("{p}.ruleTypeId");
            let mut rule_type = RuleType {
                category: "Rule".into(),
                owner: "AWS".into(),
                provider: String::new(),
                version: "1".into(),
            };
            match e.get("ruleTypeId") {
                None => self.error(&tp, item.pos, "a rule needs a ruleTypeId"),
                Some(t) => {
                    if let Some(f) =
                        self.entries(t, &tp, &["category", "owner", "provider", "version"])
                    {
                        let get = |k: &str, r: &mut Self| {
                            f.get(k).and_then(|n| r.scalar(n, &format!("{tp}.{k}")))
                        };
                        rule_type.provider = get("provider", self).unwrap_or_default();
                        rule_type.owner = get("owner", self).unwrap_or_else(|| "AWS".into());
                        rule_type.version = get("version", self).unwrap_or_else(|| "1".into());
                        rule_type.category = get("category", self).unwrap_or_else(|| "Rule".into());
                    }
                }
            }
            let mut configuration = BTreeMap::new();
            if let Some(c) = e.get("configuration") {
                if let Value::Map(pairs) = &c.value {
                    for (k, v) in pairs {
                        let key = k.as_str().unwrap_or("").to_string();
                        if let Some(value) = self.scalar(v, &format!("{p}.configuration.{key}")) {
                            configuration.insert(key, value);
                        }
                    }
                }
            }
            if rule_type.provider == "VariableCheck" {
                for key in ["Variable", "Value"] {
                    if !configuration.contains_key(key) {
                        self.error(
                            &format!("{p}.configuration"),
                            item.pos,
                            format!("a VariableCheck rule needs {key}"),
                        );
                    }
                }
                let op = configuration.get("Operator").map_or("EQ", String::as_str);
                if !OPERATORS.contains(&op) {
                    self.warn(
                        &format!("{p}.configuration.Operator"),
                        item.pos,
                        format!("operator {op} is not supported here (EQ, NE, CONTAINS): the rule will not pass"),
                    );
                }
            } else {
                self.warn(
                    &p,
                    item.pos,
                    format!(
                        "not runnable here: rule {}: it will not pass",
                        rule_type.provider
                    ),
                );
            }
            let input_artifacts = self
                .artifacts(
                    e.get("inputArtifacts"),
                    &format!("{p}.inputArtifacts"),
                    item.pos,
                )
                .into_iter()
                .map(|(a, _)| a)
                .collect();
            out.push(Rule {
                name,
                rule_type_id: rule_type,
                configuration,
                input_artifacts,
            });
        }
        out
    }

    fn result(
        &mut self,
        node: Option<&&Node>,
        path: &str,
        at: crate::yaml::Pos,
        allowed: &[&str],
    ) -> String {
        let Some(n) = node else {
            self.error(
                path,
                at,
                format!("needs a result: {}", allowed.join(" or ")),
            );
            return String::new();
        };
        let result = self.scalar(n, path).unwrap_or_default();
        if !allowed.contains(&result.as_str()) {
            self.error(
                path,
                n.pos,
                format!("result {result:?} is not one of {}", allowed.join(", ")),
            );
        }
        result
    }

    /// A list of conditions, each with a result from `allowed`.
    fn condition_list(
        &mut self,
        node: Option<&&Node>,
        path: &str,
        at: crate::yaml::Pos,
        allowed: &[&str],
    ) -> Vec<Condition> {
        let mut out = Vec::new();
        for (i, item) in self.list(node, path, at).iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(e) = self.entries(item, &p, &["result", "rules"]) else {
                continue;
            };
            let result = self.result(e.get("result"), &format!("{p}.result"), item.pos, allowed);
            let rules = self.rules(e.get("rules"), &format!("{p}.rules"), item.pos);
            out.push(Condition { result, rules });
        }
        out
    }

    /// `beforeEntry` (FAIL, SKIP) or `onSuccess` (FAIL, ROLLBACK).
    pub(super) fn conditions(
        &mut self,
        node: &Node,
        path: &str,
        allowed: &[&str],
    ) -> Option<Conditions> {
        let e = self.entries(node, path, &["conditions"])?;
        let conditions = self.condition_list(
            e.get("conditions"),
            &format!("{path}.conditions"),
            node.pos,
            allowed,
        );
        if conditions.is_empty() {
            self.error(path, node.pos, "needs at least one condition");
        }
        Some(Conditions { conditions })
    }

    /// `onFailure`: FAIL, RETRY (with its retryConfiguration) or ROLLBACK.
    pub(super) fn on_failure(&mut self, node: &Node, path: &str) -> Option<OnFailure> {
        const RESULTS: &[&str] = &["FAIL", "RETRY", "ROLLBACK"];
        let e = self.entries(node, path, &["result", "retryConfiguration", "conditions"])?;
        let result = self.result(
            e.get("result"),
            &format!("{path}.result"),
            node.pos,
            RESULTS,
        );
        let retry_configuration = match e.get("retryConfiguration") {
            None => None,
            Some(n) => {
                let rp = format!("{path}.retryConfiguration");
                let f = self.entries(n, &rp, &["retryMode"])?;
                let mode = f
                    .get("retryMode")
                    .and_then(|m| self.scalar(m, &format!("{rp}.retryMode")))
                    .unwrap_or_else(|| "FAILED_ACTIONS".into());
                if mode != "FAILED_ACTIONS" && mode != "ALL_ACTIONS" {
                    self.error(
                        &format!("{rp}.retryMode"),
                        n.pos,
                        format!("retryMode {mode:?} is not FAILED_ACTIONS or ALL_ACTIONS"),
                    );
                }
                Some(RetryConfiguration { retry_mode: mode })
            }
        };
        let conditions = self.condition_list(
            e.get("conditions"),
            &format!("{path}.conditions"),
            node.pos,
            RESULTS,
        );
        if !conditions.is_empty() {
            self.warn(&format!("{path}.conditions"), node.pos, "onFailure conditions are kept but not evaluated here: the result applies to every failure");
        }
        Some(OnFailure {
            result,
            retry_configuration,
            conditions,
        })
    }
}
