//! `nubo-agent deploy`: this machine (or container) as a deployment target,
//! CodeDeploy's on-premises agent in Nubo's protocol ([`wire`]). It
//! registers with its token, then long-polls for commands, one per
//! lifecycle event: acknowledge, run, complete. A command that was running
//! when the agent died is reported failed with error 7 as soon as it comes
//! back.
//!
//! Layout under `--root` (AWS's): `<group-id>/<deployment-id>/{bundle.tar,
//! deployment-archive/, logs/scripts.log}` and `deployment-instructions/`
//! (`<group-id>_last_successful_install`, `_most_recent_install`,
//! `-cleanup`, `-install.json`).

pub mod hooks;
pub mod install;
pub mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use nubo_runner::appspec::{self, Event};
use sha2::Digest;

use hooks::{Failure, Log};
use wire::{code, Complete, HostCommand};

#[derive(Debug, Clone)]
pub struct Options {
    pub server: String,
    pub token: String,
    pub root: PathBuf,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// Install may write only under this directory (`/` by default).
    pub dest_root: PathBuf,
}

const ONGOING: &str = "ongoing-command.json";
const MAX_BUNDLE: u64 = 2 << 30;

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    name: String,
}

impl Client {
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        let r = self
            .http
            .post(format!("{}{}{}", self.base, wire::PREFIX, path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = r.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            anyhow::bail!(Refused(r.text().await.unwrap_or_default()));
        }
        if !status.is_success() {
            anyhow::bail!(
                "the server answered {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        Ok(r.json().await?)
    }

    async fn complete(&self, cmd: &HostCommand, c: Complete) -> anyhow::Result<()> {
        let _: serde_json::Value = self
            .post(&format!("/commands/{}/complete", cmd.id), &c)
            .await?;
        Ok(())
    }
}

/// The server refused the token: revoked, or never valid.
#[derive(Debug)]
struct Refused(String);
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server refused this agent's token (revoked?): {}",
            self.0
        )
    }
}
impl std::error::Error for Refused {}

fn refused(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Refused>().is_some()
}

/// Runs until killed (or until the server refuses the token).
pub async fn run(opts: Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(opts.root.join("deployment-instructions"))
        .with_context(|| format!("cannot create {}", opts.root.display()))?;
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?,
        base: opts.server.trim_end_matches('/').to_string(),
        token: opts.token.clone(),
        name: opts.name.clone(),
    };
    let register = wire::Register {
        name: opts.name.clone(),
        tags: opts.tags.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        match client
            .post::<serde_json::Value>("/register", &register)
            .await
        {
            Ok(_) => break,
            Err(e) if refused(&e) => return Err(e),
            Err(e) => {
                eprintln!("nubo-agent: cannot register yet: {e:#}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    eprintln!(
        "nubo-agent: registered as {} with {}",
        opts.name, client.base
    );
    recover(&client, &opts.root).await?;
    let mut backoff = Duration::from_millis(200);
    loop {
        let answer: wire::PollAnswer = match client
            .post(
                "/poll",
                &wire::Poll {
                    name: opts.name.clone(),
                },
            )
            .await
        {
            Ok(a) => {
                backoff = Duration::from_millis(200);
                a
            }
            Err(e) if refused(&e) => return Err(e),
            Err(e) => {
                eprintln!("nubo-agent: poll failed: {e:#}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let Some(cmd) = answer.command else { continue };
        let ongoing = opts.root.join(ONGOING);
        install::write_atomic(&ongoing, serde_json::to_string(&cmd)?.as_bytes())?;
        if let Err(e) = client
            .post::<serde_json::Value>(
                &format!("/commands/{}/ack", cmd.id),
                &wire::Ack {
                    name: opts.name.clone(),
                },
            )
            .await
        {
            // The command was taken back (the deployment stopped): drop it.
            eprintln!("nubo-agent: {} not acknowledged: {e:#}", cmd.event);
            let _ = std::fs::remove_file(&ongoing);
            if refused(&e) {
                return Err(e);
            }
            continue;
        }
        let beat = heartbeat(&client);
        let done = execute(&client, &opts, &cmd).await;
        beat.abort();
        // Until the server has the completion, it is retried.
        let mut wait = Duration::from_millis(200);
        loop {
            match client.complete(&cmd, done.clone()).await {
                Ok(()) => break,
                Err(e) if refused(&e) => return Err(e),
                Err(e) => {
                    eprintln!("nubo-agent: cannot report {}: {e:#}", cmd.event);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
        let _ = std::fs::remove_file(&ongoing);
    }
}

/// Tells the server every 15 s that the agent is alive while an event
/// runs (a hook may run for an hour without a poll).
fn heartbeat(client: &Client) -> tokio::task::JoinHandle<()> {
    let (http, url, token) = (
        client.http.clone(),
        format!("{}{}/heartbeat", client.base, wire::PREFIX),
        client.token.clone(),
    );
    let body = wire::Poll {
        name: client.name.clone(),
    };
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(15)).await;
            let _ = http.post(&url).bearer_auth(&token).json(&body).send().await;
        }
    })
}

/// A command the agent was running when it stopped: failed, error 7.
async fn recover(client: &Client, root: &Path) -> anyhow::Result<()> {
    let ongoing = root.join(ONGOING);
    let Ok(text) = std::fs::read_to_string(&ongoing) else {
        return Ok(());
    };
    if let Ok(cmd) = serde_json::from_str::<HostCommand>(&text) {
        let c = Complete {
            name: client.name.clone(),
            status: "Failed".into(),
            error_code: code::AGENT_RESTARTED,
            script_name: None,
            message: format!(
                "Failing in-progress lifecycle event {} after an agent restart",
                cmd.event
            ),
            log: String::new(),
        };
        if let Err(e) = client.complete(&cmd, c).await {
            if refused(&e) {
                return Err(e);
            }
            eprintln!(
                "nubo-agent: the interrupted {} could not be reported: {e:#}",
                cmd.event
            );
        }
    }
    let _ = std::fs::remove_file(&ongoing);
    Ok(())
}

fn deployment_dir(root: &Path, cmd: &HostCommand) -> PathBuf {
    root.join(&cmd.group_id).join(&cmd.deployment_id)
}

fn read_appspec(archive: &Path) -> Result<appspec::AppSpec, Failure> {
    let text = ["appspec.yml", "appspec.yaml"]
        .iter()
        .find_map(|n| std::fs::read_to_string(archive.join(n)).ok())
        .ok_or_else(|| {
            Failure::new(
                code::UNKNOWN,
                None,
                "the revision has no appspec.yml at its root",
            )
        })?;
    let (spec, diags) = appspec::parse_in_bundle(&text, archive);
    spec.ok_or_else(|| {
        let lines: Vec<String> = diags
            .iter()
            .filter(|d| d.severity == appspec::Severity::Error)
            .map(|d| d.render("appspec.yml"))
            .collect();
        Failure::new(
            code::UNKNOWN,
            None,
            format!("the appspec is not valid:\n{}", lines.join("\n")),
        )
    })
}

async fn download(client: &Client, cmd: &HostCommand, dir: &Path) -> Result<usize, Failure> {
    let fail = |m: String| Failure::new(code::UNKNOWN, None, m);
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let url = format!("{}{}/commands/{}/bundle", client.base, wire::PREFIX, cmd.id);
    let mut r = client
        .http
        .get(url)
        .query(&[("name", &client.name)])
        .bearer_auth(&client.token)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .map_err(|e| fail(format!("cannot download the bundle: {e}")))?;
    if !r.status().is_success() {
        return Err(fail(format!(
            "cannot download the bundle: the server answered {}",
            r.status()
        )));
    }
    let path = dir.join("bundle.tar");
    let mut f = std::fs::File::create(&path).map_err(|e| fail(e.to_string()))?;
    let mut hash = sha2::Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = r
        .chunk()
        .await
        .map_err(|e| fail(format!("the bundle download broke off: {e}")))?
    {
        size += chunk.len() as u64;
        if size > MAX_BUNDLE {
            return Err(fail("the bundle is larger than 2 GiB".into()));
        }
        hash.update(&chunk);
        std::io::Write::write_all(&mut f, &chunk).map_err(|e| fail(e.to_string()))?;
    }
    let got = hex::encode(hash.finalize());
    if got != cmd.bundle_sha256 {
        return Err(fail(format!(
            "the bundle's SHA-256 is {got}, but the deployment expects {}; nothing was unpacked",
            cmd.bundle_sha256
        )));
    }
    let (tar, archive) = (path, dir.join("deployment-archive"));
    tokio::task::spawn_blocking(move || install::extract(&tar, &archive))
        .await
        .map_err(|e| fail(e.to_string()))?
}

/// Runs one lifecycle event; answers the completion to report.
async fn execute(client: &Client, opts: &Options, cmd: &HostCommand) -> Complete {
    let dir = deployment_dir(&opts.root, cmd);
    let mut log = Log::open(&dir.join("logs").join("scripts.log"));
    let result: Result<(), Failure> = match cmd.event.as_str() {
        "DownloadBundle" => download(client, cmd, &dir).await.map(|n| {
            log.line(&format!(
                "DownloadBundle - {n} entries, SHA-256 {}",
                cmd.bundle_sha256
            ));
        }),
        event => {
            let (root, dest_root, cmd2) = (opts.root.clone(), opts.dest_root.clone(), cmd.clone());
            let event = event.to_string();
            let r = tokio::task::spawn_blocking(move || {
                let r = run_blocking(&root, &dest_root, &cmd2, &event, &mut log);
                (r, log)
            })
            .await;
            match r {
                Ok((r, l)) => {
                    log = l;
                    r
                }
                Err(e) => {
                    log = Log::open(&dir.join("logs").join("scripts.log"));
                    Err(Failure::new(code::UNKNOWN, None, e.to_string()))
                }
            }
        }
    };
    let (status, error_code, script_name, message) = match result {
        Ok(()) => ("Succeeded", code::OK, None, String::new()),
        Err(f) => {
            log.line(&format!("{} failed: {}", cmd.event, f.message));
            ("Failed", f.code, f.script, f.message)
        }
    };
    Complete {
        name: opts.name.clone(),
        status: status.into(),
        error_code,
        script_name,
        message,
        log: log.tail(),
    }
}

fn run_blocking(
    root: &Path,
    dest_root: &Path,
    cmd: &HostCommand,
    event: &str,
    log: &mut Log,
) -> Result<(), Failure> {
    let Some(ev) = Event::parse(event) else {
        return Err(Failure::new(
            code::UNKNOWN,
            None,
            format!("unknown lifecycle event {event:?}"),
        ));
    };
    let dir = if ev.from_last_successful() {
        match install::last_successful(root, &cmd.group_id) {
            Some(d) => d,
            // A first deployment: nothing to stop.
            None => return Ok(()),
        }
    } else {
        deployment_dir(root, cmd)
    };
    let archive = dir.join("deployment-archive");
    let spec = read_appspec(&archive)?;
    if ev == Event::Install {
        return install::install(
            root,
            &cmd.group_id,
            &cmd.deployment_id,
            &spec,
            dest_root,
            log,
        )
        .map(|_| ());
    }
    if ev.reserved() {
        return Ok(());
    }
    if spec.os == "windows" {
        return Err(Failure::new(
            code::UNKNOWN,
            None,
            "the appspec's os is windows; this target runs Linux",
        ));
    }
    // The scripts' deployment is the one being run, even when they come
    // from the last successful revision.
    let mut env = vec![
        ("LIFECYCLE_EVENT".to_string(), event.to_string()),
        ("DEPLOYMENT_ID".into(), cmd.deployment_id.clone()),
        ("APPLICATION_NAME".into(), cmd.application_name.clone()),
        ("DEPLOYMENT_GROUP_NAME".into(), cmd.group_name.clone()),
        ("DEPLOYMENT_GROUP_ID".into(), cmd.group_id.clone()),
    ];
    if let Some(c) = &cmd.bundle_commit {
        env.push(("BUNDLE_COMMIT".into(), c.clone()));
    }
    hooks::run_event(&archive, event, spec.hooks_for(ev), &env, log)
}
