//! Starts the real `nubo` binary on a free loopback port with its own data
//! dir, and runs its CLI. Each test gets a fresh server.
#![allow(dead_code)]

mod builds;
mod deploy;
mod pipelines;
mod podman;
mod workspaces;

#[allow(unused_imports)]
pub use builds::*;
#[allow(unused_imports)]
pub use deploy::*;
#[allow(unused_imports)]
pub use pipelines::*;
#[allow(unused_imports)]
pub use podman::*;
#[allow(unused_imports)]
pub use workspaces::*;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

pub const BIN: &str = env!("CARGO_BIN_EXE_nubo");
/// The `/metrics` bearer token of test servers that serve metrics.
pub const METRICS_TOKEN: &str = "metrics-token-of-the-tests";

pub struct Server {
    pub child: Child,
    pub base: String,
    /// The HTTPS base URL, when the server was started with `--https`.
    pub https_base: Option<String>,
    /// The SSH listener's address.
    pub ssh_addr: Option<std::net::SocketAddr>,
    /// The first-start admin password, when this start printed one.
    pub admin_password: Option<String>,
    pub data_dir: PathBuf,
    pub stderr: Arc<Mutex<String>>,
    pub stdout: Arc<Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// A new server on a fresh data dir.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, env, &[]);
        s._tmp = Some(tmp);
        s
    }

    /// A server on `data_dir` (which may hold an earlier server's state).
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .args(["serve", "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0"])
            .args(["--preview-http", "127.0.0.1:0"])
            .env_remove("NUBO_CONFIG")
            // Working copies next to the data dir, not in /dev/shm: a killed
            // test server leaves nothing behind once its temp dir goes.
            .env("NUBO_CACHE_DIR", data_dir.with_extension("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn nubo");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
                let _ = tx.send(line);
            }
        });
        let err = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let mut admin_password = None;
        let mut https_base = None;
        let mut ssh_addr = None;
        let base = loop {
            let line = match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(l) => l,
                Err(_) => panic!("nubo did not start; stderr:\n{}", stderr.lock().unwrap()),
            };
            if let Some(pw) = line.trim().strip_prefix("password:") {
                admin_password = Some(pw.trim().to_string());
            }
            if let Some(url) = line.split("is listening on ").nth(1) {
                let url = url
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                if url.starts_with("https://") {
                    https_base = Some(url);
                    continue;
                }
                if let Some(addr) = url.strip_prefix("ssh://") {
                    ssh_addr = addr.parse().ok();
                    continue;
                }
                break url;
            }
        };
        Server {
            child,
            base,
            https_base,
            ssh_addr,
            admin_password,
            data_dir: data_dir.to_path_buf(),
            stderr,
            stdout,
            _tmp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Runs the CLI against this server's data dir.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        cli(&self.data_dir, args, stdin)
    }

    /// Creates a user with the CLI and returns an API token for them.
    pub fn user_with_token(&self, name: &str, admin: bool) -> String {
        let mut args = vec!["user", "create", name, "--password-stdin"];
        if admin {
            args.push("--admin");
        }
        let out = self.cli(&args, Some("password-of-the-test\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = self.cli(&["token", "create", name, "--description", "tests"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        kill_agents(&self.data_dir);
    }
}

/// Workspace agents outlive their server by design; a test's must not
/// outlive the test. They are found by their socket path in the data dir
/// (unconfined agents) or their workspace's id (sandboxes), and the
/// sandboxes' control groups go too.
pub fn kill_agents(data_dir: &Path) {
    // Managed deployment targets: their agent carries its id in a tag, and
    // everything in their sandbox is in their control group.
    if let Ok(ids) = std::fs::read_dir(data_dir.join("deploy-targets")) {
        for id in ids.flatten() {
            let id = id.file_name().to_string_lossy().into_owned();
            kill_matching(&format!("nubo:id={id}"));
            kill_matching(&format!("deploy-{id}"));
            for c in ["", "pids/", "memory/", "cpu/"] {
                let dir = format!("/sys/fs/cgroup/{c}nubo/deploy-{id}");
                if let Ok(procs) = std::fs::read_to_string(format!("{dir}/cgroup.procs")) {
                    for pid in procs.lines() {
                        let _ = Command::new("kill").args(["-9", pid.trim()]).status();
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
    let mut needles = vec![data_dir.join("workspaces").display().to_string()];
    if let Ok(ids) = std::fs::read_dir(data_dir.join("workspaces")) {
        needles.extend(
            ids.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            if needles.iter().any(|n| cmd.contains(n.as_str())) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    let mut groups: Vec<String> = needles[1..].iter().map(|id| format!("ws-{id}")).collect();
    if let Ok(builds) = std::fs::read_dir(data_dir.join("builds")) {
        groups.extend(
            builds
                .flatten()
                .map(|e| format!("nubo-build-{}", e.file_name().to_string_lossy())),
        );
    }
    for group in &groups {
        for c in ["", "memory/", "pids/", "cpu/"] {
            let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{c}nubo/{group}"));
        }
    }
}

fn kill_matching(needle: &str) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

pub fn cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("NUBO_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nubo cli");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // The command may exit before reading (e.g. on a usage error).
        let _ = input.write_all(text.as_bytes());
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// An HTTP client that never follows redirects (tests look at them).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `name=value` of the session cookie a response sets.
pub fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("nubo_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// Pulls `name="csrf_token" value="…"` out of a page.
pub fn csrf_from_page(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// A browser-like sign-in: returns (cookie, csrf token of the new session).
pub async fn sign_in(server: &Server, user: &str, password: &str) -> (String, String) {
    let http = client();
    let page = http.get(server.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&page).expect("login page starts a session");
    let csrf = csrf_from_page(&page.text().await.unwrap());
    let resp = http
        .post(server.url("/login"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "sign-in of {user} failed");
    let cookie = session_cookie(&resp).unwrap_or(cookie);
    let home = http
        .get(server.url("/account"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let csrf = csrf_from_page(&home.text().await.unwrap());
    (cookie, csrf)
}

/// Runs git isolated from the machine's config, with a credential helper
/// that answers `user` / `password`.
pub fn git(cwd: &Path, user: &str, password: &str, args: &[&str]) -> Output {
    let helper = format!("!f() {{ echo username={user}; echo password={password}; }}; f");
    Command::new("git")
        .current_dir(cwd)
        .env("HOME", cwd)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        // Some machines point git at a fixed CA bundle; tests choose their own.
        .env_remove("GIT_SSL_CAINFO")
        .env_remove("GIT_SSL_CAPATH")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.org")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.org")
        .args([
            "-c",
            "credential.helper=",
            "-c",
            &format!("credential.helper={helper}"),
        ])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .expect("git runs")
}

pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "git failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates a repository through the API; returns its JSON.
pub async fn create_repo(server: &Server, token: &str, name: &str) -> serde_json::Value {
    let r = client()
        .post(server.url("/api/v1/repos"))
        .bearer_auth(token)
        .json(&serde_json::json!({"name": name, "description": "test repo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

// Workspaces: the API, exec, terminals over WebSocket.

pub async fn api(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client()
        .request(method, server.url(&format!("/api/v1{path}")))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A repository with one pushed commit holding README.md.
pub async fn repo_with_readme(server: &Server, token: &str, name: &str) {
    create_repo(server, token, name).await;
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    ok(git(w, "alice", token, &["init", "-q", "src"]));
    let src = w.join("src");
    std::fs::write(src.join("README.md"), "# Hello from the repo\n").unwrap();
    ok(git(&src, "x", "x", &["add", "."]));
    ok(git(&src, "x", "x", &["commit", "-qm", "first commit"]));
    let url = server.url(&format!("/v1/repos/{name}"));
    ok(git(&src, "alice", token, &["push", "-q", &url, "main"]));
}

// Builds: wait for one to end, read its log.

/// An API error's status and `error.code`; its message must not be empty.
pub async fn error_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string();
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    (status, code)
}
