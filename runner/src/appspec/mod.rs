//! appspec.yml (CodeDeploy, EC2/on-premises): the model, the lifecycle
//! events in AWS's order, and a validator that reports every problem with
//! its line and column plus warnings for the pitfalls users meet.

use std::path::Path;

use crate::buildspec::Checker;
pub use crate::buildspec::{Diagnostic, Severity};
use crate::yaml::{self, Pos};

mod check;

/// A lifecycle event of an in-place deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    BeforeBlockTraffic,
    BlockTraffic,
    AfterBlockTraffic,
    ApplicationStop,
    DownloadBundle,
    BeforeInstall,
    Install,
    AfterInstall,
    ApplicationStart,
    ValidateService,
    BeforeAllowTraffic,
    AllowTraffic,
    AfterAllowTraffic,
}

impl Event {
    /// Every event, in the in-place order.
    pub const ALL: [Event; 13] = [
        Event::BeforeBlockTraffic,
        Event::BlockTraffic,
        Event::AfterBlockTraffic,
        Event::ApplicationStop,
        Event::DownloadBundle,
        Event::BeforeInstall,
        Event::Install,
        Event::AfterInstall,
        Event::ApplicationStart,
        Event::ValidateService,
        Event::BeforeAllowTraffic,
        Event::AllowTraffic,
        Event::AfterAllowTraffic,
    ];
    /// The events of an in-place deployment without a load balancer, in
    /// order (the traffic events apply only behind one).
    pub const IN_PLACE: [Event; 7] = [
        Event::ApplicationStop,
        Event::DownloadBundle,
        Event::BeforeInstall,
        Event::Install,
        Event::AfterInstall,
        Event::ApplicationStart,
        Event::ValidateService,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Event::BeforeBlockTraffic => "BeforeBlockTraffic",
            Event::BlockTraffic => "BlockTraffic",
            Event::AfterBlockTraffic => "AfterBlockTraffic",
            Event::ApplicationStop => "ApplicationStop",
            Event::DownloadBundle => "DownloadBundle",
            Event::BeforeInstall => "BeforeInstall",
            Event::Install => "Install",
            Event::AfterInstall => "AfterInstall",
            Event::ApplicationStart => "ApplicationStart",
            Event::ValidateService => "ValidateService",
            Event::BeforeAllowTraffic => "BeforeAllowTraffic",
            Event::AllowTraffic => "AllowTraffic",
            Event::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Events the agent performs itself: no scripts may be attached.
    pub fn reserved(self) -> bool {
        matches!(
            self,
            Event::DownloadBundle | Event::Install | Event::BlockTraffic | Event::AllowTraffic
        )
    }

    /// Events whose scripts come from the last successful revision on the
    /// target, not from the one being deployed.
    pub fn from_last_successful(self) -> bool {
        matches!(
            self,
            Event::ApplicationStop | Event::BeforeBlockTraffic | Event::AfterBlockTraffic
        )
    }
}

/// What Install does when a destination file exists and the previous
/// deployment did not install it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileExists {
    /// Fail the deployment (the default).
    #[default]
    Disallow,
    Overwrite,
    /// Keep the file that is there.
    Retain,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileMapping {
    /// Relative to the bundle root; empty for the whole bundle (`/`).
    pub source: String,
    /// Absolute.
    pub destination: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Permission {
    /// An absolute path: a file, or a directory whose tree `pattern` selects in.
    pub object: String,
    pub pattern: String,
    pub except: Vec<String>,
    /// Empty: both files and directories.
    pub kinds: Vec<Kind>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// Relative to the bundle root.
    pub location: String,
    /// Seconds.
    pub timeout: u64,
    pub runas: Option<String>,
    pub pos: Pos,
}

/// The default (and AWS's largest useful) hook timeout, in seconds.
pub const DEFAULT_TIMEOUT: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppSpec {
    pub os: String,
    pub files: Vec<FileMapping>,
    pub permissions: Vec<Permission>,
    pub file_exists_behavior: FileExists,
    pub hooks: Vec<(Event, Vec<Hook>)>,
}

impl AppSpec {
    /// The scripts of one event, in file order.
    pub fn hooks_for(&self, event: Event) -> &[Hook] {
        self.hooks
            .iter()
            .find(|(e, _)| *e == event)
            .map(|(_, h)| h.as_slice())
            .unwrap_or(&[])
    }
}

/// Parses and validates; answers the appspec when there is no error, and
/// every diagnostic in file order.
pub fn parse(text: &str) -> (Option<AppSpec>, Vec<Diagnostic>) {
    let mut c = Checker { diags: Vec::new() };
    let root = match yaml::parse(text) {
        Ok(r) => r,
        Err(e) => {
            c.error(e.pos, format!("not valid YAML: {}", e.message));
            return (None, c.diags);
        }
    };
    let spec = check::check(&mut c, &root);
    finish(c, spec)
}

/// As [`parse`], and checks the spec against the bundle it came in: every
/// hook script and every `files` source must be there.
pub fn parse_in_bundle(text: &str, bundle: &Path) -> (Option<AppSpec>, Vec<Diagnostic>) {
    let (spec, mut diags) = parse(text);
    if let Some(s) = &spec {
        let mut c = Checker { diags: Vec::new() };
        check::against_bundle(&mut c, s, bundle);
        diags.append(&mut c.diags);
        diags.sort_by_key(|d| (d.pos.line, d.pos.col));
    }
    (spec, diags)
}

fn finish(mut c: Checker, spec: Option<AppSpec>) -> (Option<AppSpec>, Vec<Diagnostic>) {
    c.diags.sort_by_key(|d| (d.pos.line, d.pos.col));
    let failed = c.diags.iter().any(|d| d.severity == Severity::Error);
    (if failed { None } else { spec }, c.diags)
}

/// Whether a relative path stays inside its root (no `..`, not absolute
/// once a leading `/` is taken off).
pub fn relative_ok(path: &str) -> bool {
    !path.split('/').any(|p| p == "..") && !path.contains('\0')
}

#[cfg(test)]
mod tests;
