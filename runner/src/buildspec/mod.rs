//! buildspec.yml (CodeBuild, versions 0.2 and 0.1): the model, and a
//! validator that reports every problem with its line and column, plus
//! warnings for the known pitfalls.

use crate::yaml::{self, Pos};

mod check;

use check::check;
pub(crate) use check::Checker;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    /// `FILE:LINE:COLUMN: error: message`, as compilers print them.
    pub fn render(&self, file: &str) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "{file}:{}:{}: {kind}: {}",
            self.pos.line, self.pos.col, self.message
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V01,
    V02,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseName {
    Install,
    PreBuild,
    Build,
    PostBuild,
}

impl PhaseName {
    pub const ALL: [PhaseName; 4] = [
        PhaseName::Install,
        PhaseName::PreBuild,
        PhaseName::Build,
        PhaseName::PostBuild,
    ];
    pub fn key(self) -> &'static str {
        match self {
            PhaseName::Install => "install",
            PhaseName::PreBuild => "pre_build",
            PhaseName::Build => "build",
            PhaseName::PostBuild => "post_build",
        }
    }
    /// The name in logs: `INSTALL`, `PRE_BUILD`, ...
    pub fn upper(self) -> &'static str {
        match self {
            PhaseName::Install => "INSTALL",
            PhaseName::PreBuild => "PRE_BUILD",
            PhaseName::Build => "BUILD",
            PhaseName::PostBuild => "POST_BUILD",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    Abort,
    Continue,
    /// RETRY, RETRY-<n>, RETRY-<regex>, RETRY-<n>-<regex>: retries (default 3).
    Retry(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: PhaseName,
    pub run_as: Option<String>,
    pub on_failure: OnFailure,
    pub commands: Vec<Command>,
    pub finally: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Env {
    pub shell: Option<String>,
    pub variables: Vec<(String, String)>,
    pub parameter_store: Vec<(String, String)>,
    pub secrets_manager: Vec<(String, String)>,
    pub exported_variables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Artifacts {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub exclude_paths: Vec<String>,
    pub secondary: Vec<(String, Artifacts)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Buildspec {
    pub version: Version,
    pub run_as: Option<String>,
    pub env: Env,
    pub phases: Vec<Phase>,
    pub artifacts: Option<Artifacts>,
    pub cache: Option<Cache>,
    pub reports: Vec<ReportGroup>,
    /// Batch builds (`batch:`): the builds this buildspec starts instead of
    /// running its own phases.
    pub batch: Option<crate::batch::Batch>,
}

/// A report group: which files, in which format.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportGroup {
    pub name: String,
    pub format: String,
    /// The files, found like artifacts' (`files`, `base-directory`, `discard-paths`).
    pub files: Artifacts,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cache {
    pub paths: Vec<String>,
    /// Variables in it are expanded by the build's shell.
    pub key: Option<String>,
    pub fallback_keys: Vec<String>,
    /// `restore` or `save` only; both when unset.
    pub action: Option<String>,
}

impl Buildspec {
    pub fn phase(&self, name: PhaseName) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// `bash` or `sh` (the default), as the shell to run.
    pub fn shell(&self) -> String {
        match self.env.shell.as_deref() {
            Some("bash") | Some("/bin/bash") | Some("/usr/bin/bash") => "bash".into(),
            Some(other) if other.starts_with('/') => other.into(),
            _ => "sh".into(),
        }
    }
}

/// Parses and validates; answers the buildspec when there is no error, and
/// every diagnostic (errors and warnings) in file order.
pub fn parse(text: &str) -> (Option<Buildspec>, Vec<Diagnostic>) {
    let mut c = Checker { diags: Vec::new() };
    let root = match yaml::parse(text) {
        Ok(r) => r,
        Err(e) => {
            c.error(e.pos, format!("not valid YAML: {}", e.message));
            return (None, c.diags);
        }
    };
    let spec = check(&mut c, &root);
    c.diags.sort_by_key(|d| (d.pos.line, d.pos.col));
    let failed = c.diags.iter().any(|d| d.severity == Severity::Error);
    (if failed { None } else { spec }, c.diags)
}

#[cfg(test)]
mod tests;
