//! Deployment targets for the tests: real `nubo agent deploy` processes,
//! each with its own root, killed (with anything their hooks left
//! running) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{api, Server, BIN};

/// A managed target's app for the tests: python's http.server on 8080
/// serving /srv/site (start, stop, and a ValidateService that waits for it).
/// The appspec of the small app the managed-target tests deploy: `site/`
/// to `/srv/site`, started, stopped and checked by the scripts below.
pub const MANAGED_APPSPEC: &str = "version: 0.0
os: linux
files:
  - source: site
    destination: /srv/site
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStop:
    - location: scripts/stop.sh
  ApplicationStart:
    - location: scripts/start.sh
  ValidateService:
    - location: scripts/check.sh
";

pub const APP_START: &str = "#!/bin/sh\ncd /srv/site\nnohup python3 -m http.server 8080 --bind 127.0.0.1 > /dev/null 2>&1 &\necho $! > /srv/app.pid\n";
pub const APP_STOP: &str = "#!/bin/sh\n[ -f /srv/app.pid ] && kill $(cat /srv/app.pid) 2>/dev/null\nrm -f /srv/app.pid\nexit 0\n";
pub const APP_CHECK: &str = "#!/bin/sh\nfor i in $(seq 1 50); do\n  python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/')\" 2>/dev/null && exit 0\n  sleep 0.1\ndone\necho 'the app does not answer' >&2\nexit 1\n";

pub struct Target {
    pub child: Option<Child>,
    pub root: PathBuf,
    pub name: String,
    server: String,
    token: String,
    tags: String,
    dest_root: Option<PathBuf>,
    pub stderr: Arc<Mutex<String>>,
    _tmp: tempfile::TempDir,
}

impl Target {
    pub fn start(server: &Server, token: &str, name: &str, tags: &str) -> Target {
        let tmp = tempfile::tempdir().unwrap();
        let mut t = Target {
            child: None,
            root: tmp.path().join("root"),
            name: name.into(),
            server: server.base.clone(),
            token: token.into(),
            tags: tags.into(),
            dest_root: None,
            stderr: Arc::default(),
            _tmp: tmp,
        };
        t.spawn();
        t
    }

    /// Only under `dir` may this target install files.
    pub fn start_confined(
        server: &Server,
        token: &str,
        name: &str,
        tags: &str,
        dir: &Path,
    ) -> Target {
        let mut t = Target::start(server, token, name, tags);
        t.kill();
        t.dest_root = Some(dir.to_path_buf());
        t.spawn();
        t
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(BIN);
        cmd.args([
            "agent",
            "deploy",
            "--server",
            &self.server,
            "--token",
            &self.token,
            "--name",
            &self.name,
        ])
        .arg("--root")
        .arg(&self.root)
        .args(["--tags", &self.tags])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if let Some(d) = &self.dest_root {
            cmd.arg("--dest-root").arg(d);
        }
        let mut child = cmd.spawn().expect("spawn the deploy agent");
        let err = child.stderr.take().unwrap();
        let sink = self.stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        self.child = Some(child);
    }

    /// SIGKILL, as a crash would (hooks it started keep running).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Waits for the agent to exit on its own; answers its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let c = self.child.as_mut()?;
        let end = std::time::Instant::now() + within;
        while std::time::Instant::now() < end {
            if let Ok(Some(s)) = c.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The deployment's `scripts.log` on this target.
    pub fn log(&self, group_id: &str, deployment: &str) -> String {
        std::fs::read_to_string(
            self.root
                .join(group_id)
                .join(deployment)
                .join("logs/scripts.log"),
        )
        .unwrap_or_default()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.kill();
        // Whatever a hook left running in this root goes too.
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in dir.flatten() {
            if let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) {
                if cwd.starts_with(&self.root) {
                    let _ = Command::new("kill")
                        .args(["-9", &e.file_name().to_string_lossy()])
                        .status();
                }
            }
        }
    }
}

/// An administrator, alice (not one), and an agent token for alice's targets.
pub async fn deploy_setup(server: &Server) -> (String, String) {
    let admin = server.user_with_token("root", true);
    let alice = server.user_with_token("alice", false);
    let (s, t) = api(
        server,
        &admin,
        Method::POST,
        "/deploy/agent-tokens",
        Some(json!({"description": "test targets", "owner": "alice"})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    (alice, t["token"].as_str().unwrap().to_string())
}

/// Waits until `n` targets are online for `token`'s user.
pub async fn wait_online(server: &Server, token: &str, n: usize) -> Value {
    let mut v = Value::Null;
    for _ in 0..200 {
        let (_, t) = api(server, token, Method::GET, "/deploy/targets", None).await;
        if t.as_array()
            .is_some_and(|a| a.iter().filter(|x| x["online"] == true).count() >= n)
        {
            return t;
        }
        v = t;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("targets never came online: {v:#}");
}

pub async fn deployment(server: &Server, token: &str, id: &str) -> Value {
    let (s, d) = api(
        server,
        token,
        Method::GET,
        &format!("/deploy/deployments/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{d}");
    d
}

/// Waits until the deployment has ended; answers it.
pub async fn wait_done(server: &Server, token: &str, id: &str) -> Value {
    wait_deployment(server, token, id, "the deployment's end", |d| {
        matches!(
            d["status"].as_str(),
            Some("Succeeded" | "Failed" | "Stopped")
        )
    })
    .await
}

pub async fn wait_deployment(
    server: &Server,
    token: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut d = Value::Null;
    for _ in 0..1200 {
        d = deployment(server, token, id).await;
        if done(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never came: {d:#}");
}

/// Creates application `app` with group `group` (tags env=test).
pub async fn app_and_group(
    server: &Server,
    token: &str,
    app: &str,
    group: &str,
    config: &str,
    auto_rollback: bool,
) -> Value {
    let (s, a) = api(
        server,
        token,
        Method::POST,
        "/deploy/applications",
        Some(json!({"name": app})),
    )
    .await;
    assert!(s == 201 || s == 409, "{a}");
    let (s, g) = api(
        server,
        token,
        Method::POST,
        &format!("/deploy/applications/{app}/groups"),
        Some(json!({"name": group, "config": config, "tags": {"env": "test"}, "auto_rollback": auto_rollback})),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    g
}

/// Deploys a commit of `repo`; answers the deployment id.
pub async fn deploy_commit(
    server: &Server,
    token: &str,
    app: &str,
    group: &str,
    repo: &str,
    commit: &str,
) -> String {
    let (s, d) = api(
        server,
        token,
        Method::POST,
        &format!("/deploy/applications/{app}/groups/{group}/deployments"),
        Some(json!({"revision": {"repo": repo, "commit": commit}})),
    )
    .await;
    assert_eq!(s, 201, "{d}");
    d["id"].as_str().unwrap().to_string()
}

/// The status of each target's event `event`, by target name.
pub fn event_status(d: &Value, target: &str, event: &str) -> Value {
    d["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["name"] == target))
        .and_then(|t| {
            t["events"]
                .as_array()
                .and_then(|es| es.iter().find(|e| e["name"] == event))
                .cloned()
        })
        .unwrap_or(Value::Null)
}
