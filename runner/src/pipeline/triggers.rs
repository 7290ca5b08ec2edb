//! Reading a declaration's `triggers` (V2): the push filters of its git
//! configuration. Pull-request triggers are kept out with a warning.

use super::filters::{Patterns, PushFilter};
use super::read::Reader;
use crate::yaml::{Node, Value};

/// The most push filters, and globs in one list (CodePipeline's limits).
const MAX_FILTERS: usize = 3;
const MAX_GLOBS: usize = 8;

impl Reader<'_> {
    fn patterns(&mut self, node: &Node, path: &str) -> Option<Patterns> {
        let e = self.entries(node, path, &["includes", "excludes"])?;
        let mut lists = [Vec::new(), Vec::new()];
        for (i, key) in ["includes", "excludes"].iter().enumerate() {
            let items = self.list(e.get(*key), &format!("{path}.{key}"), node.pos);
            if items.len() > MAX_GLOBS {
                self.error(
                    &format!("{path}.{key}"),
                    node.pos,
                    format!("at most {MAX_GLOBS} globs, not {}", items.len()),
                );
            }
            for (j, item) in items.iter().enumerate() {
                if let Some(glob) = self.scalar(item, &format!("{path}.{key}[{j}]")) {
                    if glob.is_empty() || glob.len() > 255 {
                        self.error(
                            &format!("{path}.{key}[{j}]"),
                            item.pos,
                            "a glob has 1 to 255 characters",
                        );
                    }
                    lists[i].push(glob);
                }
            }
        }
        let [includes, excludes] = lists;
        Some(Patterns { includes, excludes })
    }

    /// The push filters of `triggers`.
    pub(super) fn triggers(&mut self, node: &Node, path: &str) -> Vec<PushFilter> {
        let mut out = Vec::new();
        let items = match &node.value {
            Value::Seq(items) => items.clone(),
            Value::Null => Vec::new(),
            _ => {
                self.error(path, node.pos, "triggers must be a list");
                return out;
            }
        };
        for (i, t) in items.iter().enumerate() {
            let tp = format!("{path}[{i}]");
            let Some(e) = self.entries(t, &tp, &["providerType", "gitConfiguration"]) else {
                continue;
            };
            let Some(git) = e.get("gitConfiguration") else {
                self.error(&tp, t.pos, "a trigger needs a gitConfiguration");
                continue;
            };
            let gp = format!("{tp}.gitConfiguration");
            let Some(g) = self.entries(git, &gp, &["sourceActionName", "push", "pullRequest"])
            else {
                continue;
            };
            if let Some(pr) = g.get("pullRequest") {
                self.warn(
                    &format!("{gp}.pullRequest"),
                    pr.pos,
                    "pull request triggers are kept but not acted on yet",
                );
            }
            let pushes = self.list(g.get("push"), &format!("{gp}.push"), git.pos);
            if pushes.len() > MAX_FILTERS {
                self.error(
                    &format!("{gp}.push"),
                    git.pos,
                    format!("at most {MAX_FILTERS} push filters, not {}", pushes.len()),
                );
            }
            for (j, f) in pushes.iter().enumerate() {
                let fp = format!("{gp}.push[{j}]");
                let Some(k) = self.entries(f, &fp, &["branches", "tags", "filePaths"]) else {
                    continue;
                };
                let get = |key: &str, r: &mut Self| {
                    k.get(key)
                        .and_then(|n| r.patterns(n, &format!("{fp}.{key}")))
                };
                let filter = PushFilter {
                    branches: get("branches", self),
                    tags: get("tags", self),
                    file_paths: get("filePaths", self),
                };
                match (&filter.branches, &filter.tags) {
                    (None, None) => self.error(&fp, f.pos, "a push filter names branches or tags"),
                    (Some(_), Some(_)) => {
                        self.error(&fp, f.pos, "a push filter names branches or tags, not both")
                    }
                    (None, Some(_)) if filter.file_paths.is_some() => {
                        self.error(&fp, f.pos, "file paths go with branches, not tags")
                    }
                    _ => {}
                }
                out.push(filter);
            }
        }
        out
    }
}
