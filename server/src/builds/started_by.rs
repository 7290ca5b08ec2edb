//! What started a build, when a pipeline did: its execution, read from
//! the variables a pipeline passes to the builds it starts.

use serde::Serialize;
use utoipa::ToSchema;

/// A pipeline's execution, as a build links back to it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PipelineLink {
    pub pipeline: String,
    pub execution: String,
}

/// The pipeline execution that started a build, from the variables a
/// pipeline passes (`CODEPIPELINE_PIPELINE_NAME`, `CODEPIPELINE_EXECUTION_ID`).
pub(super) fn started_by_pipeline(env_json: &str) -> Option<PipelineLink> {
    let env: Vec<(String, String)> = serde_json::from_str(env_json).unwrap_or_default();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    Some(PipelineLink {
        pipeline: get("CODEPIPELINE_PIPELINE_NAME")?,
        execution: get("CODEPIPELINE_EXECUTION_ID")?,
    })
}
