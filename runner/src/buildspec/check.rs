//! The buildspec's validation: every problem collected with its line and
//! column (`Checker`), and the model built from what passed.

use super::*;
use crate::yaml::{Node, Pos, Value};

/// Collects diagnostics while a buildspec is read.
pub(crate) struct Checker {
    pub(crate) diags: Vec<Diagnostic>,
}

impl Checker {
    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            pos,
            severity: Severity::Error,
            message: message.into(),
        });
    }
    pub(crate) fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            pos,
            severity: Severity::Warning,
            message: message.into(),
        });
    }

    pub(crate) fn map<'a>(&mut self, node: &'a Node, what: &str) -> Option<&'a [(Node, Node)]> {
        match &node.value {
            Value::Map(pairs) => Some(pairs),
            Value::Null => Some(&[]),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a mapping, not {}", node.kind()),
                );
                None
            }
        }
    }

    pub(crate) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s, _) => Some(s.clone()),
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a string, not {}", node.kind()),
                );
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, node: &Node, what: &str) -> bool {
        match node.as_str() {
            Some("yes" | "true" | "True" | "TRUE" | "on") => true,
            Some("no" | "false" | "False" | "FALSE" | "off") => false,
            _ => {
                self.error(node.pos, format!("{what} must be yes or no"));
                false
            }
        }
    }

    pub(crate) fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| self.string(i, &format!("each entry of {what}")))
                .collect(),
            Value::Str(s, _) => vec![s.clone()],
            Value::Null => vec![],
            _ => {
                self.error(
                    node.pos,
                    format!("{what} must be a list, not {}", node.kind()),
                );
                vec![]
            }
        }
    }

    pub(crate) fn unknown(&mut self, key: &Node, section: &str, known: &[&str]) {
        let name = key.as_str().unwrap_or("?");
        let hint = known
            .iter()
            .find(|k| k.replace('_', "-") == name.replace('_', "-"))
            .map(|k| format!(" (did you mean {k}?)"))
            .unwrap_or_default();
        self.warn(
            key.pos,
            format!("unknown key {name:?} in {section}; it is ignored{hint}"),
        );
    }
}

fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn commands(c: &mut Checker, node: &Node, what: &str, shell: &str) -> Vec<Command> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        Value::Null => vec![],
        _ => {
            c.error(
                node.pos,
                format!("{what} must be a list of commands, not {}", node.kind()),
            );
            return vec![];
        }
    };
    let mut out = Vec::new();
    for item in items {
        match &item.value {
            Value::Str(text, _) => {
                if text.contains("[[") && shell == "sh" {
                    c.warn(
                        item.pos,
                        "`[[` is a bash feature but commands run under sh; set env.shell: bash or use `[`",
                    );
                }
                let lines = text.trim_end().lines().count();
                if lines > 1 && !text.contains("set -e") {
                    c.warn(
                        item.pos,
                        "a multi-line command: only its last line's exit status counts, so an earlier failure is masked (add `set -e` or split it)",
                    );
                }
                out.push(Command {
                    text: text.clone(),
                    pos: item.pos,
                });
            }
            Value::Map(pairs) => {
                let key = pairs.first().and_then(|(k, _)| k.as_str()).unwrap_or("");
                c.error(
                    item.pos,
                    format!("a command must be a string, but YAML read a mapping here (\"{key}: ...\"): quote the whole command"),
                );
            }
            _ => c.error(
                item.pos,
                format!("a command must be a string, not {}", item.kind()),
            ),
        }
    }
    out
}

fn on_failure(c: &mut Checker, node: &Node) -> OnFailure {
    let Some(v) = c.string(node, "on-failure") else {
        return OnFailure::Abort;
    };
    match v.as_str() {
        "ABORT" => OnFailure::Abort,
        "CONTINUE" => OnFailure::Continue,
        "RETRY" => OnFailure::Retry(3),
        other if other.starts_with("RETRY-") => {
            let rest = &other[6..];
            let n = rest.split('-').next().and_then(|n| n.parse().ok());
            OnFailure::Retry(n.unwrap_or(3).min(10))
        }
        other => {
            c.error(
                node.pos,
                format!("on-failure must be ABORT, CONTINUE or RETRY[-n][-regex], not {other:?}"),
            );
            OnFailure::Abort
        }
    }
}

fn artifacts(c: &mut Checker, node: &Node, what: &str, top: bool) -> Option<Artifacts> {
    let pairs = c.map(node, what)?;
    let mut a = Artifacts::default();
    let mut has_files = false;
    for (k, v) in pairs {
        match k.as_str().unwrap_or("") {
            "files" => {
                has_files = true;
                a.files = c.strings(v, &format!("{what}.files"));
            }
            "name" => a.name = c.string(v, &format!("{what}.name")),
            "base-directory" => a.base_directory = c.string(v, &format!("{what}.base-directory")),
            "discard-paths" => a.discard_paths = c.boolean(v, &format!("{what}.discard-paths")),
            "exclude-paths" => a.exclude_paths = c.strings(v, &format!("{what}.exclude-paths")),
            "enable-symlinks" | "s3-prefix" => {}
            "secondary-artifacts" if top => {
                if let Some(ids) = c.map(v, "artifacts.secondary-artifacts") {
                    for (id, spec) in ids {
                        let Some(name) = c.string(id, "an artifact identifier") else {
                            continue;
                        };
                        if !env_name_ok(&name) {
                            c.error(
                                id.pos,
                                format!("artifact identifier {name:?}: use letters, digits and _"),
                            );
                        }
                        if let Some(s) = artifacts(
                            c,
                            spec,
                            &format!("artifacts.secondary-artifacts.{name}"),
                            false,
                        ) {
                            a.secondary.push((name, s));
                        }
                    }
                }
            }
            _ => c.unknown(
                k,
                what,
                &[
                    "files",
                    "name",
                    "base-directory",
                    "discard-paths",
                    "exclude-paths",
                    "enable-symlinks",
                    "s3-prefix",
                    "secondary-artifacts",
                ],
            ),
        }
    }
    let only_secondaries = top && !a.secondary.is_empty();
    if !has_files && !only_secondaries {
        c.error(node.pos, format!("{what}.files is required"));
    }
    Some(a)
}

pub(super) fn check(c: &mut Checker, root: &Node) -> Option<Buildspec> {
    let Value::Map(top) = &root.value else {
        c.error(
            root.pos,
            "a buildspec must be a mapping with at least version and phases",
        );
        return None;
    };
    let get = |name: &str| top.iter().find(|(k, _)| k.as_str() == Some(name));
    let version = match get("version") {
        None => {
            c.error(root.pos, "version is required (0.2)");
            None
        }
        Some((_, v)) => match v.as_str() {
            Some("0.2") => Some(Version::V02),
            Some("0.1") => Some(Version::V01),
            _ => {
                c.error(v.pos, "version must be 0.2 (or 0.1)");
                None
            }
        },
    };
    let mut env = Env::default();
    if let Some((_, node)) = get("env") {
        if let Some(pairs) = c.map(node, "env") {
            for (k, v) in pairs {
                match k.as_str().unwrap_or("") {
                    "shell" => env.shell = c.string(v, "env.shell"),
                    "variables" | "parameter-store" | "secrets-manager" => {
                        let section = k.as_str().unwrap_or("");
                        let what = format!("env.{section}");
                        let Some(vars) = c.map(v, &what) else {
                            continue;
                        };
                        for (name, value) in vars {
                            let Some(n) = c.string(name, "a variable name") else {
                                continue;
                            };
                            if !env_name_ok(&n) {
                                c.error(name.pos, format!("{n:?} is not a valid variable name"));
                            } else if n.starts_with("CODEBUILD_") {
                                c.warn(
                                    name.pos,
                                    format!("{n}: the CODEBUILD_ prefix is reserved for CodeBuild's own variables; avoid it"),
                                );
                            }
                            let Some(val) = c.string(value, &format!("{what}.{n}")) else {
                                continue;
                            };
                            if section == "variables"
                                && (val.contains("$PATH")
                                    || val.contains("${")
                                    || val.contains("$HOME"))
                            {
                                c.warn(
                                    value.pos,
                                    format!("{n}: variables are taken literally, so {val:?} is not expanded; export it in a command instead"),
                                );
                            }
                            let entry = (n, val);
                            match section {
                                "variables" => env.variables.push(entry),
                                "parameter-store" => env.parameter_store.push(entry),
                                _ => env.secrets_manager.push(entry),
                            }
                        }
                    }
                    "exported-variables" => {
                        env.exported_variables = c.strings(v, "env.exported-variables");
                        for n in &env.exported_variables {
                            if !env_name_ok(n) {
                                c.error(v.pos, format!("{n:?} is not a valid variable name"));
                            }
                        }
                    }
                    "git-credential-helper" => {
                        c.boolean(v, "env.git-credential-helper");
                    }
                    _ => c.unknown(
                        k,
                        "env",
                        &[
                            "shell",
                            "variables",
                            "parameter-store",
                            "secrets-manager",
                            "exported-variables",
                            "git-credential-helper",
                        ],
                    ),
                }
            }
        }
    }
    let shell = match env.shell.as_deref() {
        Some("bash") | Some("/bin/bash") | Some("/usr/bin/bash") => "bash",
        _ => "sh",
    };
    let mut phases = Vec::new();
    let batch = get("batch").and_then(|(_, n)| crate::batch::parse(c, n));
    match get("phases") {
        // A batch buildspec may leave the work to the buildspecs it names.
        None if get("batch").is_some() => {}
        None => c.error(root.pos, "phases is required"),
        Some((_, node)) => {
            if let Some(pairs) = c.map(node, "phases") {
                for (k, v) in pairs {
                    let key = k.as_str().unwrap_or("");
                    let Some(name) = PhaseName::ALL.into_iter().find(|p| p.key() == key) else {
                        c.error(k.pos, format!("unknown phase {key:?}: use install, pre_build, build or post_build"));
                        continue;
                    };
                    let what = format!("phases.{key}");
                    let mut phase = Phase {
                        name,
                        run_as: None,
                        on_failure: OnFailure::Abort,
                        commands: vec![],
                        finally: vec![],
                    };
                    let mut has_commands = false;
                    let mut has_runtime_versions = false;
                    if let Some(items) = c.map(v, &what) {
                        for (pk, pv) in items {
                            match pk.as_str().unwrap_or("") {
                                "commands" => {
                                    has_commands = true;
                                    phase.commands =
                                        commands(c, pv, &format!("{what}.commands"), shell);
                                }
                                "finally" => {
                                    phase.finally =
                                        commands(c, pv, &format!("{what}.finally"), shell)
                                }
                                "run-as" => phase.run_as = c.string(pv, &format!("{what}.run-as")),
                                "on-failure" => phase.on_failure = on_failure(c, pv),
                                "runtime-versions" => {
                                    has_runtime_versions = true;
                                    if name != PhaseName::Install {
                                        c.error(
                                            pk.pos,
                                            "runtime-versions is only allowed in the install phase",
                                        );
                                    } else if c.map(pv, "runtime-versions").is_some() {
                                        c.warn(
                                            pk.pos,
                                            "runtime-versions is accepted and ignored: the build uses the runtimes its image (or the local machine) has; install others in commands",
                                        );
                                    }
                                }
                                _ => c.unknown(
                                    pk,
                                    &what,
                                    &[
                                        "commands",
                                        "finally",
                                        "run-as",
                                        "on-failure",
                                        "runtime-versions",
                                    ],
                                ),
                            }
                        }
                    }
                    // An install phase may hold runtime-versions alone
                    // (common in AWS's samples).
                    let runtimes_only = name == PhaseName::Install && has_runtime_versions;
                    if !has_commands && !runtimes_only {
                        c.error(k.pos, format!("{what}.commands is required"));
                    }
                    phases.push(phase);
                }
            }
        }
    }
    phases.sort_by_key(|p| PhaseName::ALL.iter().position(|n| *n == p.name));
    let artifacts = get("artifacts").and_then(|(_, n)| artifacts(c, n, "artifacts", true));
    let mut run_as = None;
    let mut cache_spec = None;
    let mut report_groups = Vec::new();
    for (k, v) in top {
        match k.as_str().unwrap_or("") {
            "version" | "env" | "phases" | "artifacts" => {}
            "run-as" => run_as = c.string(v, "run-as"),
            "cache" => {
                if let Some(pairs) = c.map(v, "cache") {
                    let mut cache = Cache::default();
                    for (ck, cv) in pairs {
                        match ck.as_str().unwrap_or("") {
                            "paths" => {
                                cache.paths = c.strings(cv, "cache.paths");
                            }
                            "key" => {
                                cache.key = c.string(cv, "cache.key");
                            }
                            "fallback-keys" => {
                                cache.fallback_keys = c.strings(cv, "cache.fallback-keys");
                                if cache.fallback_keys.len() > 5 {
                                    c.error(cv.pos, "cache.fallback-keys takes at most 5 keys");
                                }
                            }
                            "action" => {
                                if let Some(a) = c.string(cv, "cache.action") {
                                    if a != "restore" && a != "save" {
                                        c.error(cv.pos, "cache.action must be restore or save");
                                    }
                                    cache.action = Some(a);
                                }
                            }
                            _ => {
                                c.unknown(ck, "cache", &["paths", "key", "fallback-keys", "action"])
                            }
                        }
                    }
                    cache_spec = Some(cache);
                }
            }
            "reports" => {
                if let Some(groups) = c.map(v, "reports") {
                    if groups.len() > 5 {
                        c.error(v.pos, "at most 5 report groups");
                    }
                    for (gk, gv) in groups {
                        let Some(name) = c.string(gk, "a report group name") else {
                            continue;
                        };
                        let what = format!("reports.{name}");
                        let mut format = "JUNITXML".to_string();
                        let mut files = Artifacts::default();
                        let mut has_files = false;
                        if let Some(pairs) = c.map(gv, &what) {
                            for (rk, rv) in pairs {
                                match rk.as_str().unwrap_or("") {
                                    "files" => {
                                        has_files = true;
                                        files.files = c.strings(rv, &format!("{what}.files"));
                                    }
                                    "base-directory" => {
                                        files.base_directory =
                                            c.string(rv, &format!("{what}.base-directory"))
                                    }
                                    "discard-paths" => {
                                        files.discard_paths =
                                            c.boolean(rv, &format!("{what}.discard-paths"))
                                    }
                                    "file-format" => {
                                        // CodeBuild takes them in any case.
                                        let f = c
                                            .string(rv, &format!("{what}.file-format"))
                                            .unwrap_or_default()
                                            .to_ascii_uppercase();
                                        const KNOWN: &[&str] = &[
                                            "JUNITXML",
                                            "CUCUMBERJSON",
                                            "TESTNGXML",
                                            "VISUALSTUDIOTRX",
                                            "NUNITXML",
                                            "NUNIT3XML",
                                            "CLOVERXML",
                                            "COBERTURAXML",
                                            "JACOCOXML",
                                            "SIMPLECOV",
                                        ];
                                        if !KNOWN.contains(&f.as_str()) {
                                            c.error(rv.pos, format!("unknown file-format {f:?}"));
                                        } else if f != "JUNITXML" {
                                            c.warn(rv.pos, format!("{f} reports are not read yet (only JUNITXML); this group is skipped"));
                                        }
                                        format = f;
                                    }
                                    _ => c.unknown(
                                        rk,
                                        &what,
                                        &[
                                            "files",
                                            "base-directory",
                                            "discard-paths",
                                            "file-format",
                                        ],
                                    ),
                                }
                            }
                        }
                        if !has_files {
                            c.error(gk.pos, format!("{what}.files is required"));
                        }
                        report_groups.push(ReportGroup {
                            name,
                            format,
                            files,
                        });
                    }
                }
            }
            "batch" => {}
            "proxy" => {
                if let Some(pairs) = c.map(v, "proxy") {
                    for (pk, pv) in pairs {
                        match pk.as_str().unwrap_or("") {
                            "upload-artifacts" | "logs" => {
                                c.boolean(pv, "proxy");
                            }
                            _ => c.unknown(pk, "proxy", &["upload-artifacts", "logs"]),
                        }
                    }
                }
            }
            _ => c.unknown(
                k,
                "the buildspec",
                &[
                    "version",
                    "run-as",
                    "env",
                    "proxy",
                    "batch",
                    "phases",
                    "reports",
                    "artifacts",
                    "cache",
                ],
            ),
        }
    }
    Some(Buildspec {
        version: version?,
        run_as,
        env,
        phases,
        artifacts,
        cache: cache_spec,
        reports: report_groups,
        batch,
    })
}
