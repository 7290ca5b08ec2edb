//! Pipelines as CodePipeline declares them: the model Nubo stores (the JSON
//! of `aws codepipeline get-pipeline`'s `pipeline`, camelCase) and its
//! checker ([`check`]), which reads that JSON, the same in YAML, or a
//! CloudFormation template's `AWS::CodePipeline::Pipeline` (PascalCase),
//! and answers errors and warnings with their paths and positions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod check;
mod conditions;
mod filters;
mod read;
mod triggers;
mod vars;

pub use check::{check, Checked, Problem};
pub use conditions::{
    first_failing, Condition, Conditions, OnFailure, RetryConfiguration, Rule, RuleType,
};
pub use filters::{decide, glob, Patterns, PushFilter};
pub use vars::{references, substitute};

/// The most stages and actions per stage (CodePipeline's limits).
pub const MAX_STAGES: usize = 50;
pub const MAX_ACTIONS_PER_STAGE: usize = 50;
/// The longest a manual approval may wait, in minutes (7 days, as AWS).
pub const MAX_APPROVAL_MINUTES: u32 = 7 * 24 * 60;

/// A pipeline's declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub name: String,
    pub stages: Vec<Stage>,
    /// `SUPERSEDED` (the default), `QUEUED` or `PARALLEL`.
    pub execution_mode: String,
    #[serde(default)]
    pub variables: Vec<Variable>,
    /// Push filters from `triggers` (none: pushes to the source branch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub push_filters: Vec<PushFilter>,
}

/// A pipeline-level variable, overridable when an execution is started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    pub name: String,
    #[serde(default)]
    pub default_value: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<Conditions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Conditions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionType {
    /// Source, Build, Test, Deploy, Approval or Invoke.
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub name: String,
    pub action_type_id: ActionType,
    pub run_order: u32,
    #[serde(default)]
    pub configuration: BTreeMap<String, String>,
    #[serde(default)]
    pub input_artifacts: Vec<Artifact>,
    #[serde(default)]
    pub output_artifacts: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// How long a manual approval waits (default 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<u32>,
}

/// What Nubo does with an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runs {
    /// A Nubo repository's commit (CodeCommit, CodeStarSourceConnection, GitHub).
    Source,
    /// A Nubo build project (CodeBuild).
    Build,
    /// A manual approval.
    Approval,
    /// A Nubo deployment group's deployment (CodeDeploy).
    Deploy,
    /// Kept in the definition, reported, not run.
    NotHere,
}

impl Action {
    /// How Nubo runs this action's provider.
    pub fn runs(&self) -> Runs {
        let t = &self.action_type_id;
        match (t.category.as_str(), t.provider.as_str()) {
            ("Source", "CodeCommit" | "CodeStarSourceConnection" | "GitHub") => Runs::Source,
            ("Build" | "Test", "CodeBuild") => Runs::Build,
            ("Approval", "Manual") => Runs::Approval,
            ("Deploy", "CodeDeploy") => Runs::Deploy,
            _ => Runs::NotHere,
        }
    }

    pub fn config(&self, key: &str) -> Option<&str> {
        self.configuration.get(key).map(String::as_str)
    }
}

impl Pipeline {
    /// The repository and branch of the (first) source action.
    pub fn source(&self) -> Option<(&str, &str)> {
        let action = self
            .stages
            .first()?
            .actions
            .iter()
            .find(|a| a.runs() == Runs::Source)?;
        let repo = action
            .config("RepositoryName")
            .or(action.config("FullRepositoryId"))
            .or(action.config("Repo"))?;
        let branch = action
            .config("BranchName")
            .or(action.config("Branch"))
            .unwrap_or("main");
        Some((repo.rsplit('/').next().unwrap_or(repo), branch))
    }
}

/// The rule for stage, action, artifact and pipeline names (CodePipeline's).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '-' | '_'))
}

#[cfg(test)]
mod tests;
