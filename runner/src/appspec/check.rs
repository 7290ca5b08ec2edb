//! Reading an appspec's YAML tree into the model, collecting every problem.

use std::path::Path;

use super::*;
use crate::yaml::{Node, Value};

const TOP: &[&str] = &[
    "version",
    "os",
    "files",
    "permissions",
    "hooks",
    "file_exists_behavior",
];
const FILE_KEYS: &[&str] = &["source", "destination"];
const PERMISSION_KEYS: &[&str] = &[
    "object", "pattern", "except", "type", "owner", "group", "mode", "acls", "context",
];
const HOOK_KEYS: &[&str] = &["location", "timeout", "runas"];

pub(super) fn check(c: &mut Checker, root: &Node) -> Option<AppSpec> {
    let Value::Map(pairs) = &root.value else {
        c.error(
            root.pos,
            format!("an appspec must be a mapping, not {}", root.kind()),
        );
        return None;
    };
    let mut spec = AppSpec::default();
    let (mut version, mut os) = (false, false);
    for (k, v) in pairs {
        match k.as_str().unwrap_or("") {
            "version" => {
                version = true;
                match v.as_str() {
                    Some("0.0") => {}
                    Some(other) => c.error(
                        v.pos,
                        format!("version must be 0.0 (the only appspec version for EC2/on-premises deployments), not {other}"),
                    ),
                    None => c.error(v.pos, "version must be 0.0"),
                }
            }
            "os" => {
                os = true;
                match v.as_str() {
                    Some("linux") => spec.os = "linux".into(),
                    Some("windows") => {
                        spec.os = "windows".into();
                        c.warn(v.pos, "os is windows, but Nubo's deployment agent runs on Linux: a deployment of this revision fails on every target");
                    }
                    Some(other) => {
                        c.error(v.pos, format!("os must be linux or windows, not {other:?}"))
                    }
                    None => c.error(v.pos, "os must be linux or windows"),
                }
            }
            "files" => spec.files = files(c, v),
            "permissions" => spec.permissions = permissions(c, v),
            "hooks" => spec.hooks = hooks(c, v),
            "file_exists_behavior" => {
                spec.file_exists_behavior = match v.as_str() {
                    Some("DISALLOW") => FileExists::Disallow,
                    Some("OVERWRITE") => FileExists::Overwrite,
                    Some("RETAIN") => FileExists::Retain,
                    _ => {
                        c.error(
                            v.pos,
                            "file_exists_behavior must be DISALLOW, OVERWRITE or RETAIN",
                        );
                        FileExists::Disallow
                    }
                }
            }
            name => {
                let hint = match name {
                    "Hooks" | "Resources" => " (Hooks and Resources are the ECS/Lambda appspec; this one is for EC2/on-premises targets)".to_string(),
                    _ => TOP
                        .iter()
                        .find(|t| t.eq_ignore_ascii_case(name))
                        .map(|t| format!(" (did you mean {t}?)"))
                        .unwrap_or_default(),
                };
                c.error(k.pos, format!("unknown key {name:?} in the appspec{hint}"));
            }
        }
    }
    if !version {
        c.error(root.pos, "the appspec needs version: 0.0");
    }
    if !os {
        c.error(root.pos, "the appspec needs os: linux");
    }
    Some(spec)
}

fn list<'a>(c: &mut Checker, node: &'a Node, what: &str) -> &'a [Node] {
    match &node.value {
        Value::Seq(items) => items,
        Value::Null => &[],
        _ => {
            c.error(
                node.pos,
                format!("{what} must be a list, not {}", node.kind()),
            );
            &[]
        }
    }
}

fn unknown(c: &mut Checker, key: &Node, section: &str, known: &[&str]) {
    let name = key.as_str().unwrap_or("?");
    c.error(
        key.pos,
        format!(
            "unknown key {name:?} in {section} (expected one of: {})",
            known.join(", ")
        ),
    );
}

fn files(c: &mut Checker, node: &Node) -> Vec<FileMapping> {
    let mut out = Vec::new();
    for item in list(c, node, "files") {
        let Some(pairs) = c.map(item, "each entry of files") else {
            continue;
        };
        let (mut source, mut destination) = (None, None);
        for (k, v) in pairs {
            match k.as_str().unwrap_or("") {
                "source" => source = c.string(v, "source").map(|s| (s, v.pos)),
                "destination" => destination = c.string(v, "destination").map(|s| (s, v.pos)),
                _ => unknown(c, k, "a files entry", FILE_KEYS),
            }
        }
        let (Some((source, spos)), Some((destination, dpos))) = (source, destination) else {
            c.error(
                item.pos,
                "each entry of files needs a source and a destination",
            );
            continue;
        };
        if !relative_ok(&source) {
            c.error(
                spos,
                format!("source {source:?} must stay inside the bundle (no ..)"),
            );
        }
        if !destination.starts_with('/') {
            c.error(
                dpos,
                format!("destination {destination:?} must be an absolute path (CodeDeploy does not resolve relative destinations)"),
            );
        } else if destination.split('/').any(|p| p == "..") {
            c.error(
                dpos,
                format!("destination {destination:?} must not contain .."),
            );
        }
        let source = source
            .trim_start_matches("./")
            .trim_matches('/')
            .to_string();
        out.push(FileMapping {
            source,
            destination: destination.trim_end_matches('/').to_string(),
        });
    }
    out
}

fn mode(c: &mut Checker, v: &Node) -> Option<u32> {
    let s = v.as_str().unwrap_or("");
    if s.is_empty() || s.len() > 4 || !s.chars().all(|ch| ('0'..='7').contains(&ch)) {
        c.error(
            v.pos,
            format!("mode must be octal digits such as 644 or 0755, not {s:?}"),
        );
        return None;
    }
    u32::from_str_radix(s, 8).ok()
}

fn permissions(c: &mut Checker, node: &Node) -> Vec<Permission> {
    let mut out = Vec::new();
    for item in list(c, node, "permissions") {
        let Some(pairs) = c.map(item, "each entry of permissions") else {
            continue;
        };
        let mut p = Permission {
            object: String::new(),
            pattern: "**".into(),
            except: vec![],
            kinds: vec![],
            owner: None,
            group: None,
            mode: None,
        };
        for (k, v) in pairs {
            match k.as_str().unwrap_or("") {
                "object" => p.object = c.string(v, "object").unwrap_or_default(),
                "pattern" => p.pattern = c.string(v, "pattern").unwrap_or_else(|| "**".into()),
                "except" => p.except = c.strings(v, "except"),
                "type" => {
                    for t in c.strings(v, "type") {
                        match t.as_str() {
                            "file" => p.kinds.push(Kind::File),
                            "directory" => p.kinds.push(Kind::Directory),
                            _ => c.error(v.pos, format!("type must be file or directory, not {t:?}")),
                        }
                    }
                }
                "owner" => p.owner = c.string(v, "owner"),
                "group" => p.group = c.string(v, "group"),
                "mode" => p.mode = mode(c, v),
                "acls" | "context" => c.warn(k.pos, format!("{} is not applied by Nubo's agent (no ACL or SELinux support); it is ignored", k.as_str().unwrap_or(""))),
                _ => unknown(c, k, "a permissions entry", PERMISSION_KEYS),
            }
        }
        if !p.object.starts_with('/') {
            c.error(
                item.pos,
                "each entry of permissions needs an absolute object",
            );
            continue;
        }
        out.push(p);
    }
    out
}

fn hooks(c: &mut Checker, node: &Node) -> Vec<(Event, Vec<Hook>)> {
    let Some(pairs) = c.map(node, "hooks") else {
        return vec![];
    };
    let mut out: Vec<(Event, Vec<Hook>)> = Vec::new();
    for (k, v) in pairs {
        let name = k.as_str().unwrap_or("");
        let Some(event) = Event::parse(name) else {
            let hint = Event::ALL
                .iter()
                .find(|e| distance(&e.name().to_ascii_lowercase(), &name.to_ascii_lowercase()) <= 2)
                .map(|e| format!(" (did you mean {}?)", e.name()))
                .unwrap_or_default();
            c.error(k.pos, format!("{name:?} is not a lifecycle event{hint}"));
            continue;
        };
        if event.reserved() {
            c.error(
                k.pos,
                format!("{name} is run by the agent itself and takes no scripts"),
            );
            continue;
        }
        if out.iter().any(|(e, _)| *e == event) {
            c.error(k.pos, format!("{name} is listed twice"));
            continue;
        }
        let mut scripts = Vec::new();
        for item in list(c, v, name) {
            let Some(hp) = c.map(item, "each hook") else {
                continue;
            };
            let mut h = Hook {
                location: String::new(),
                timeout: DEFAULT_TIMEOUT,
                runas: None,
                pos: item.pos,
            };
            for (hk, hv) in hp {
                match hk.as_str().unwrap_or("") {
                    "location" => h.location = c.string(hv, "location").unwrap_or_default(),
                    "timeout" => match hv.as_str().and_then(|s| s.parse::<u64>().ok()) {
                        Some(0) | None => {
                            c.error(hv.pos, "timeout must be a whole number of seconds above 0")
                        }
                        Some(t) => {
                            if t > DEFAULT_TIMEOUT {
                                c.warn(hv.pos, "a timeout above 3600 seconds: CodeDeploy allows at most an hour per lifecycle event");
                            }
                            h.timeout = t;
                        }
                    },
                    "runas" => h.runas = c.string(hv, "runas"),
                    _ => unknown(c, hk, "a hook", HOOK_KEYS),
                }
            }
            if h.location.is_empty() {
                c.error(
                    item.pos,
                    "each hook needs a location (the script's path in the bundle)",
                );
                continue;
            }
            if !relative_ok(&h.location) {
                c.error(
                    item.pos,
                    format!(
                        "location {:?} must stay inside the bundle (no ..)",
                        h.location
                    ),
                );
                continue;
            }
            h.location = h
                .location
                .trim_start_matches('/')
                .trim_start_matches("./")
                .to_string();
            scripts.push(h);
        }
        out.push((event, scripts));
    }
    out
}

/// The pitfalls only the bundle shows: a hook script or a `files` source
/// that is not in it.
pub(super) fn against_bundle(c: &mut Checker, spec: &AppSpec, bundle: &Path) {
    for (event, hooks) in &spec.hooks {
        for h in hooks {
            let p = bundle.join(&h.location);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => {}
                Ok(_) => c.error(
                    h.pos,
                    format!(
                        "{}: {} is not a regular file in the bundle",
                        event.name(),
                        h.location
                    ),
                ),
                Err(_) => c.error(
                    h.pos,
                    format!(
                        "{}: the script {} is not in the bundle",
                        event.name(),
                        h.location
                    ),
                ),
            }
        }
    }
    for f in &spec.files {
        if !f.source.is_empty() && std::fs::symlink_metadata(bundle.join(&f.source)).is_err() {
            c.warn(
                Pos { line: 1, col: 1 },
                format!("files: the source {} is not in the bundle", f.source),
            );
        }
    }
}

/// Edits between two short names (Levenshtein), for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
