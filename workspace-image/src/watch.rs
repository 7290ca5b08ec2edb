//! File watching: changes under the root are batched (150 ms) and offered
//! as server-sent events, `event: fs` with `{"paths": [...]}` (relative,
//! deduplicated). Git's internals are left out except `.git/HEAD`, which
//! tells a viewer that the branch changed.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::Shared;

pub struct Events {
    tx: broadcast::Sender<String>,
    _watcher: Option<notify::RecommendedWatcher>,
}

/// Whether an event is a change. Reading a file or listing a directory is
/// one too for inotify (open, close without writing): told to the IDE, each
/// read made it read again, without end.
pub fn changes(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    match kind {
        notify::EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        notify::EventKind::Access(_) => false,
        _ => true,
    }
}

/// Whether a changed path is worth telling a viewer about.
pub fn interesting(rel: &str) -> bool {
    if rel == ".git/HEAD" {
        return true;
    }
    !(rel == ".git" || rel.starts_with(".git/") || rel.contains("/.git/"))
}

impl Events {
    pub fn start(root: &Path) -> Events {
        use notify::Watcher;
        let (tx, _) = broadcast::channel(256);
        let (raw_tx, mut raw_rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res {
                if !changes(&event.kind) {
                    return;
                }
                for path in event.paths {
                    let _ = raw_tx.send(path);
                }
            }
        });
        let watcher = match watcher {
            Ok(mut w) => match w.watch(root, notify::RecursiveMode::Recursive) {
                Ok(()) => Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, "file watching is off");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "file watching is off");
                None
            }
        };
        let root = root.to_path_buf();
        let out = tx.clone();
        tokio::spawn(async move {
            while let Some(first) = raw_rx.recv().await {
                let mut batch = BTreeSet::new();
                let mut add = |p: PathBuf| {
                    if let Ok(rel) = p.strip_prefix(&root) {
                        let rel = rel.to_string_lossy().into_owned();
                        if !rel.is_empty() && interesting(&rel) {
                            batch.insert(rel);
                        }
                    }
                };
                add(first);
                let deadline = tokio::time::Instant::now() + Duration::from_millis(150);
                while let Ok(Some(p)) = tokio::time::timeout_at(deadline, raw_rx.recv()).await {
                    add(p);
                }
                // A directory made just now may have been filled before its
                // watch was in place (`mkdir d && touch d/f`): report what is
                // in it too.
                let dirs: Vec<String> = batch
                    .iter()
                    .filter(|rel| root.join(rel.as_str()).is_dir())
                    .cloned()
                    .collect();
                for dir in dirs {
                    contents(&root, &dir, &mut batch, 2001);
                }
                if !batch.is_empty() && batch.len() <= 2000 {
                    let paths: Vec<_> = batch.into_iter().collect();
                    let _ = out.send(serde_json::json!({ "paths": paths }).to_string());
                } else if !batch.is_empty() {
                    // Too many to list: tell viewers to reload everything.
                    let _ = out.send(serde_json::json!({ "paths": [""] }).to_string());
                }
            }
        });
        Events {
            tx,
            _watcher: watcher,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.tx.subscribe()
    }
}

/// Adds what is under `rel` (relative paths, interesting ones only) to
/// `out`, stopping once `out` holds `limit` paths.
fn contents(root: &Path, rel: &str, out: &mut BTreeSet<String>, limit: usize) {
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in entries.flatten() {
        if out.len() >= limit {
            return;
        }
        let child = format!("{rel}/{}", e.file_name().to_string_lossy());
        if !interesting(&child) {
            continue;
        }
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        out.insert(child.clone());
        if is_dir {
            contents(root, &child, out, limit);
        }
    }
}

pub async fn sse(
    State(agent): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = agent.events.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(data) => Some((Ok(Event::default().event("fs").data(data)), rx)),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let all = serde_json::json!({ "paths": [""] }).to_string();
                Some((Ok(Event::default().event("fs").data(all)), rx))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn git_internals_are_quiet_but_head_is_not() {
        assert!(super::interesting("src/main.rs"));
        assert!(super::interesting(".git/HEAD"));
        assert!(!super::interesting(".git/objects/ab/cdef"));
        assert!(!super::interesting("vendor/x/.git/index"));
        assert!(super::interesting(".gitignore"));
    }

    #[tokio::test]
    async fn reading_is_no_change_but_writing_is() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("read.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let events = super::Events::start(dir.path());
        let mut rx = events.subscribe();
        // What an editor does on opening a file: read it, list its folder.
        std::fs::read(dir.path().join("read.txt")).unwrap();
        std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .for_each(drop);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        std::fs::write(dir.path().join("written.txt"), "y").unwrap();
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the write is reported")
            .unwrap();
        assert_eq!(first, r#"{"paths":["written.txt"]}"#);
    }
}
