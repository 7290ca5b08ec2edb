//! What the benchmarks share: the binary, its CLI, and the real git with a
//! token as the password.
#![allow(dead_code)]

use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_nubo");

/// Runs `nubo --data-dir DATA ARGS`; answers its trimmed stdout.
pub fn cli(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    String::from_utf8(child.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string()
}

/// Runs the real git in `dir` with `token` as the password.
pub fn git(dir: &std::path::Path, token: &str, args: &[&str]) {
    let helper = format!("!f() {{ echo username=bench; echo password={token}; }}; f");
    let ok = Command::new("git")
        .current_dir(dir)
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_SSL_CAINFO")
        .args([
            "-c",
            "credential.helper=",
            "-c",
            &format!("credential.helper={helper}"),
        ])
        .args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@e",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// Starts `nubo serve` on a free loopback port with its data in `data`
/// (and `env`), quiet; answers the process and its base URL once it
/// answers `/healthz`.
pub async fn serve(
    data: &std::path::Path,
    cache: &std::path::Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data)
        .args([
            "--log-level",
            "warn",
            "serve",
            "--http",
            &format!("127.0.0.1:{port}"),
            "--ssh",
            "127.0.0.1:0",
            "--preview-http",
            "127.0.0.1:0",
        ])
        .env("NUBO_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    (child, base)
}

/// An API call with `token`; answers the JSON body.
pub async fn api(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut r = http
        .request(method, format!("{base}/api/v1{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap().json().await.unwrap()
}

/// Stops the managed deployment targets a benchmark's server started
/// (they outlive it): everything in their control groups, and their
/// sandboxes' launchers.
pub fn kill_managed(data: &std::path::Path) {
    let root = data.join("deploy-targets");
    let Ok(ids) = std::fs::read_dir(&root) else {
        return;
    };
    let needle = root.display().to_string();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmd).contains(&needle) {
                let pid = p.file_name().to_string_lossy().into_owned();
                let _ = Command::new("kill")
                    .args(["-9", &pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    for id in ids.flatten() {
        let id = id.file_name().to_string_lossy().into_owned();
        for c in ["", "pids/", "memory/", "cpu/"] {
            let dir = format!("/sys/fs/cgroup/{c}nubo/deploy-{id}");
            if let Ok(pids) = std::fs::read_to_string(format!("{dir}/cgroup.procs")) {
                for pid in pids.lines() {
                    let _ = Command::new("kill")
                        .args(["-9", pid.trim()])
                        .stderr(Stdio::null())
                        .status();
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// The value of `--runs N` on the benchmark's command line, or `default`.
pub fn runs_arg(default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates the user `bench` (an administrator if asked) in `data`;
/// answers an API token of theirs.
pub fn bench_user(data: &std::path::Path, admin: bool) -> String {
    let mut args = vec!["user", "create", "bench", "--password-stdin"];
    if admin {
        args.push("--admin");
    }
    cli(data, &args, Some("bench-password-1\n"));
    cli(data, &["token", "create", "bench"], None)
}
