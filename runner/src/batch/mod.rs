//! Batch builds (`batch:` in a buildspec): the model, its validation (with
//! positions), the expansion of a build matrix, and the scheduling rules
//! shared by the server and `nubo build --local` — a pure core, no I/O.
//!
//! Rules, as CodeBuild runs batches:
//! - `build-list` builds are independent; `build-matrix` builds are the
//!   cross product of its `dynamic` buildspecs, images and variable values,
//!   each with the `static` settings; `build-graph` builds start once every
//!   build they `depend-on` has succeeded (or failed with `ignore-failure`).
//! - A build whose dependency failed is not started.
//! - `fast-fail: true`: the first failure of a build without
//!   `ignore-failure` stops the running builds and starts no more.
//! - The batch succeeds when every build without `ignore-failure` did.

use crate::buildspec::Checker;
use crate::yaml::{Node, Pos, Value};

mod schedule;

pub use schedule::{step, State, Step};

/// The most builds one batch may hold (CodeBuild's default quota).
pub const MAX_BUILDS: usize = 100;

/// CodeBuild's compute types Nubo maps to limits: (memory MiB, CPUs).
pub const COMPUTE_TYPES: &[(&str, u64, f64)] = &[
    ("BUILD_GENERAL1_SMALL", 3072, 2.0),
    ("BUILD_GENERAL1_MEDIUM", 7168, 4.0),
    ("BUILD_GENERAL1_LARGE", 15360, 8.0),
    ("BUILD_GENERAL1_XLARGE", 73728, 36.0),
    ("BUILD_GENERAL1_2XLARGE", 147456, 72.0),
];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// `build-list`, `build-matrix` or `build-graph`.
    pub kind: String,
    pub fast_fail: bool,
    pub combine_artifacts: bool,
    pub builds: Vec<BatchBuild>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct BatchBuild {
    pub identifier: String,
    /// A buildspec in the source, instead of the batch's own file.
    pub buildspec: Option<String>,
    pub variables: Vec<(String, String)>,
    pub image: Option<String>,
    pub compute_type: Option<String>,
    /// Refused when the build runs (no Docker daemon in Nubo's builds).
    pub privileged_mode: bool,
    pub ignore_failure: bool,
    pub depend_on: Vec<String>,
    #[serde(skip)]
    pub pos: Pos,
}

impl BatchBuild {
    /// Memory (MiB) and CPUs of its compute type, if it names one.
    pub fn limits(&self) -> Option<(u64, f64)> {
        let t = self.compute_type.as_deref()?;
        COMPUTE_TYPES
            .iter()
            .find(|(n, _, _)| *n == t)
            .map(|(_, m, c)| (*m, *c))
    }
}

fn identifier_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Settings of one build (`env` and the rest of an entry), over `base`.
fn entry(
    c: &mut Checker,
    node: &Node,
    what: &str,
    kind: &str,
    base: &BatchBuild,
) -> Option<BatchBuild> {
    let pairs = c.map(node, what)?;
    let mut b = base.clone();
    b.pos = node.pos;
    let mut has_identifier = false;
    for (k, v) in pairs {
        let key = k.as_str().unwrap_or("");
        match key {
            "identifier" => {
                has_identifier = true;
                if let Some(id) = c.string(v, &format!("{what}.identifier")) {
                    if !identifier_ok(&id) {
                        c.error(
                            v.pos,
                            format!("identifier {id:?}: use 1-64 letters, digits, '_' or '-'"),
                        );
                    }
                    b.identifier = id;
                }
            }
            "buildspec" => b.buildspec = c.string(v, &format!("{what}.buildspec")),
            "ignore-failure" => b.ignore_failure = c.boolean(v, &format!("{what}.ignore-failure")),
            "depend-on" if kind == "build-graph" => {
                b.depend_on = c.strings(v, &format!("{what}.depend-on"))
            }
            "depend-on" => c.warn(
                k.pos,
                format!("depend-on is for build-graph; in {kind} it is ignored"),
            ),
            "debug-session" => {
                c.boolean(v, &format!("{what}.debug-session"));
                c.warn(
                    k.pos,
                    "debug-session is accepted and ignored (Nubo has no session manager)",
                );
            }
            "env" => env(c, v, &format!("{what}.env"), &mut b),
            _ => c.unknown(
                k,
                what,
                &[
                    "identifier",
                    "buildspec",
                    "env",
                    "ignore-failure",
                    "depend-on",
                    "debug-session",
                ],
            ),
        }
    }
    if !has_identifier && kind == "build-graph" {
        c.error(
            node.pos,
            format!("{what}.identifier is required in a build-graph"),
        );
    }
    Some(b)
}

fn env(c: &mut Checker, node: &Node, what: &str, b: &mut BatchBuild) {
    let Some(pairs) = c.map(node, what) else {
        return;
    };
    for (k, v) in pairs {
        match k.as_str().unwrap_or("") {
            "variables" => {
                let Some(vars) = c.map(v, &format!("{what}.variables")) else {
                    continue;
                };
                for (name, value) in vars {
                    let (Some(n), Some(val)) = (
                        c.string(name, "a variable name"),
                        c.string(value, &format!("{what}.variables")),
                    ) else {
                        continue;
                    };
                    b.variables.retain(|(k, _)| *k != n);
                    b.variables.push((n, val));
                }
            }
            "image" => b.image = c.string(v, &format!("{what}.image")),
            "compute-type" => {
                b.compute_type = c.string(v, &format!("{what}.compute-type"));
                compute_type_known(c, v, b.compute_type.as_deref());
            }
            "privileged-mode" => {
                b.privileged_mode = c.boolean(v, &format!("{what}.privileged-mode"));
                if b.privileged_mode {
                    c.warn(
                        v.pos,
                        "privileged-mode is refused when the build runs: Nubo's builds have no Docker daemon",
                    );
                }
            }
            "type" => {
                c.string(v, &format!("{what}.type"));
            }
            "fleet" => {
                c.string(v, &format!("{what}.fleet"));
                c.warn(
                    k.pos,
                    "fleet is accepted and ignored: Nubo's builds run on the server's own runner",
                );
            }
            _ => c.unknown(
                k,
                what,
                &[
                    "variables",
                    "image",
                    "compute-type",
                    "privileged-mode",
                    "type",
                    "fleet",
                ],
            ),
        }
    }
}

fn compute_type_known(c: &mut Checker, node: &Node, t: Option<&str>) {
    if let Some(t) = t {
        if !COMPUTE_TYPES.iter().any(|(n, _, _)| *n == t) {
            c.warn(
                node.pos,
                format!("compute-type {t:?} has no Nubo equivalent; the project's limits apply"),
            );
        }
    }
}

/// `batch/build-matrix`: the `static` settings and the cross product of
/// the `dynamic` buildspecs, images, compute types and variable values.
fn matrix(c: &mut Checker, node: &Node) -> Vec<BatchBuild> {
    let Some(pairs) = c.map(node, "batch.build-matrix") else {
        return vec![];
    };
    let mut base = BatchBuild::default();
    let mut buildspecs: Vec<Option<String>> = vec![None];
    let mut images: Vec<Option<String>> = vec![None];
    let mut computes: Vec<Option<String>> = vec![None];
    let mut variables: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in pairs {
        match k.as_str().unwrap_or("") {
            "static" => {
                if let Some(b) = entry(c, v, "batch.build-matrix.static", "build-matrix", &base) {
                    base = b;
                }
            }
            "dynamic" => {
                let Some(dyn_pairs) = c.map(v, "batch.build-matrix.dynamic") else {
                    continue;
                };
                for (dk, dv) in dyn_pairs {
                    match dk.as_str().unwrap_or("") {
                        "buildspec" => {
                            buildspecs = c
                                .strings(dv, "batch.build-matrix.dynamic.buildspec")
                                .into_iter()
                                .map(Some)
                                .collect()
                        }
                        "env" => {
                            let Some(env_pairs) = c.map(dv, "batch.build-matrix.dynamic.env")
                            else {
                                continue;
                            };
                            for (ek, ev) in env_pairs {
                                match ek.as_str().unwrap_or("") {
                                    "image" => {
                                        images = c
                                            .strings(ev, "batch.build-matrix.dynamic.env.image")
                                            .into_iter()
                                            .map(Some)
                                            .collect()
                                    }
                                    "compute-type" => {
                                        computes = c
                                            .strings(
                                                ev,
                                                "batch.build-matrix.dynamic.env.compute-type",
                                            )
                                            .into_iter()
                                            .map(Some)
                                            .collect();
                                        for t in &computes {
                                            compute_type_known(c, ev, t.as_deref());
                                        }
                                    }
                                    "variables" => {
                                        let Some(vars) =
                                            c.map(ev, "batch.build-matrix.dynamic.env.variables")
                                        else {
                                            continue;
                                        };
                                        for (name, values) in vars {
                                            if let Some(n) = c.string(name, "a variable name") {
                                                let list = c.strings(
                                                    values,
                                                    &format!("batch.build-matrix.dynamic.env.variables.{n}"),
                                                );
                                                variables.push((n, list));
                                            }
                                        }
                                    }
                                    _ => c.unknown(
                                        ek,
                                        "batch.build-matrix.dynamic.env",
                                        &["image", "compute-type", "variables"],
                                    ),
                                }
                            }
                        }
                        _ => c.unknown(dk, "batch.build-matrix.dynamic", &["buildspec", "env"]),
                    }
                }
            }
            _ => c.unknown(k, "batch.build-matrix", &["static", "dynamic"]),
        }
    }
    // The cross product, in the order written: buildspecs, images,
    // compute types, then each variable's values.
    let mut combos: Vec<BatchBuild> = Vec::new();
    for bs in &buildspecs {
        for img in &images {
            for ct in &computes {
                let mut b = base.clone();
                b.pos = node.pos;
                if bs.is_some() {
                    b.buildspec = bs.clone();
                }
                if img.is_some() {
                    b.image = img.clone();
                }
                if ct.is_some() {
                    b.compute_type = ct.clone();
                }
                combos.push(b);
            }
        }
    }
    for (name, values) in &variables {
        if values.is_empty() {
            continue;
        }
        let mut next = Vec::new();
        for b in &combos {
            for v in values {
                let mut b = b.clone();
                b.variables.retain(|(k, _)| k != name);
                b.variables.push((name.clone(), v.clone()));
                next.push(b);
            }
            if next.len() > MAX_BUILDS {
                break;
            }
        }
        combos = next;
    }
    for (i, b) in combos.iter_mut().enumerate() {
        b.identifier = format!("build{}", i + 1);
    }
    combos
}

/// Parses `batch:`; errors and warnings go to the checker.
pub(crate) fn parse(c: &mut Checker, node: &Node) -> Option<Batch> {
    let pairs = c.map(node, "batch")?;
    let mut batch = Batch {
        kind: String::new(),
        fast_fail: false,
        combine_artifacts: false,
        builds: vec![],
    };
    for (k, v) in pairs {
        let key = k.as_str().unwrap_or("");
        match key {
            "fast-fail" => batch.fast_fail = c.boolean(v, "batch.fast-fail"),
            "combine-artifacts" => {
                batch.combine_artifacts = c.boolean(v, "batch.combine-artifacts")
            }
            "build-list" | "build-graph" => {
                if !batch.kind.is_empty() {
                    c.error(
                        k.pos,
                        format!("batch holds both {} and {key}: use one", batch.kind),
                    );
                    continue;
                }
                batch.kind = key.to_string();
                let Value::Seq(items) = &v.value else {
                    c.error(
                        v.pos,
                        format!("batch.{key} must be a list of builds, not {}", v.kind()),
                    );
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let what = format!("batch.{key}[{}]", i + 1);
                    if let Some(mut b) = entry(c, item, &what, key, &BatchBuild::default()) {
                        if b.identifier.is_empty() {
                            b.identifier = format!("build{}", i + 1);
                        }
                        batch.builds.push(b);
                    }
                }
            }
            "build-matrix" => {
                if !batch.kind.is_empty() {
                    c.error(
                        k.pos,
                        format!("batch holds both {} and {key}: use one", batch.kind),
                    );
                    continue;
                }
                batch.kind = key.to_string();
                batch.builds = matrix(c, v);
            }
            "build-fanout" => {
                c.error(
                    k.pos,
                    "batch.build-fanout is not supported by Nubo; use build-list or build-matrix",
                );
            }
            _ => c.unknown(
                k,
                "batch",
                &[
                    "fast-fail",
                    "combine-artifacts",
                    "build-list",
                    "build-matrix",
                    "build-graph",
                ],
            ),
        }
    }
    if batch.kind.is_empty() {
        c.error(
            node.pos,
            "batch needs one of build-list, build-matrix or build-graph",
        );
        return None;
    }
    if batch.builds.is_empty() {
        c.error(node.pos, format!("batch.{} holds no build", batch.kind));
    }
    if batch.builds.len() > MAX_BUILDS {
        c.error(
            node.pos,
            format!(
                "a batch holds at most {MAX_BUILDS} builds; this one makes {}",
                batch.builds.len()
            ),
        );
    }
    // Identifiers are unique, and a graph's edges lead somewhere, without a cycle.
    for (i, b) in batch.builds.iter().enumerate() {
        if batch.builds[..i]
            .iter()
            .any(|o| o.identifier == b.identifier)
        {
            c.error(
                b.pos,
                format!("identifier {:?} is used twice", b.identifier),
            );
        }
        for d in &b.depend_on {
            if !batch.builds.iter().any(|o| &o.identifier == d) {
                c.error(
                    b.pos,
                    format!(
                        "{} depends on {d:?}, which is not in the batch",
                        b.identifier
                    ),
                );
            } else if d == &b.identifier {
                c.error(b.pos, format!("{} depends on itself", b.identifier));
            }
        }
    }
    if let Some(at) = cycle(&batch.builds) {
        let b = &batch.builds[at];
        c.error(
            b.pos,
            format!(
                "{} is part of a dependency cycle in batch.build-graph",
                b.identifier
            ),
        );
    }
    Some(batch)
}

/// A build on a dependency cycle, if any.
fn cycle(builds: &[BatchBuild]) -> Option<usize> {
    // 0 = unvisited, 1 = on the stack, 2 = done.
    fn visit(i: usize, builds: &[BatchBuild], mark: &mut [u8]) -> Option<usize> {
        if mark[i] == 1 {
            return Some(i);
        }
        if mark[i] == 2 {
            return None;
        }
        mark[i] = 1;
        for d in &builds[i].depend_on {
            if let Some(j) = builds.iter().position(|b| &b.identifier == d) {
                if j != i {
                    if let Some(c) = visit(j, builds, mark) {
                        return Some(c);
                    }
                }
            }
        }
        mark[i] = 2;
        None
    }
    let mut mark = vec![0u8; builds.len()];
    (0..builds.len()).find_map(|i| visit(i, builds, &mut mark))
}

#[cfg(test)]
mod tests;
