//! The build runner's pure parts and its local executor: the buildspec
//! model and validator (with exact positions), artifact collection, log
//! masking, and running a build on this machine as CodeBuild would. The
//! server and the CLI (`nubo buildspec check`, `nubo build`) use it.

pub mod appspec;
pub mod artifacts;
pub mod batch;
pub mod buildspec;
pub mod cache;
pub mod local;
pub mod local_batch;
pub mod mask;
pub mod pipeline;
pub mod reports;
pub mod yaml;
