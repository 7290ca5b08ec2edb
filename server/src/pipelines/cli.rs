//! `nubo pipeline …`: check a declaration offline, and list, start and
//! follow pipelines on this server's data directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::ctx::Ctx;
use crate::identity::accounts;

/// An answer to a waiting manual approval.
#[derive(Debug, clap::Args)]
pub struct Answer {
    name: String,
    execution: String,
    #[arg(long)]
    stage: String,
    #[arg(long)]
    action: String,
    #[arg(long = "as")]
    user: String,
    #[arg(long, default_value = "")]
    comment: String,
}

#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Validate a declaration (CodePipeline JSON, the same in YAML, or a CloudFormation template): exit 0 when valid (warnings allowed), 1 with FILE:LINE:COL errors on stderr
    #[command(
        after_help = "Examples:\n  nubo pipeline check pipeline.json\n  nubo pipeline check template.yml --param Repo=app --param Branch=main"
    )]
    Check {
        file: PathBuf,
        /// A CloudFormation parameter for !Ref and !Sub (NAME=VALUE; repeatable)
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Create a pipeline from a declaration, owned by USER
    #[command(
        visible_alias = "import",
        after_help = "Examples:\n  nubo pipeline create pipeline.json --owner alice\n  aws codepipeline get-pipeline --name web > web.json && nubo pipeline import web.json --owner alice\n  nubo pipeline import template.yml --owner alice --param Repo=web --repo app"
    )]
    Create {
        file: PathBuf,
        #[arg(long)]
        owner: String,
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// The Nubo repository a CodeStarSourceConnection or GitHub source stands for
        #[arg(long)]
        repo: Option<String>,
    },
    /// Approve a waiting manual approval, as USER
    #[command(
        after_help = "Example:\n  nubo pipeline approve web EXECUTION --stage Approve --action Gate --as alice --comment 'ship it'"
    )]
    Approve(Answer),
    /// Reject a waiting manual approval, as USER
    #[command(
        after_help = "Example:\n  nubo pipeline reject web EXECUTION --stage Approve --action Gate --as alice --comment 'not yet'"
    )]
    Reject(Answer),
    /// Retry a failed stage (FAILED_ACTIONS or ALL_ACTIONS), as USER
    #[command(
        after_help = "Example:\n  nubo pipeline retry web EXECUTION --stage Build --as alice"
    )]
    Retry {
        name: String,
        execution: String,
        #[arg(long)]
        stage: String,
        #[arg(long, default_value = "FAILED_ACTIONS")]
        mode: String,
        #[arg(long = "as")]
        user: String,
    },
    /// Stop an execution (--abandon: without letting running actions finish), as USER
    #[command(after_help = "Example:\n  nubo pipeline stop web EXECUTION --as alice --abandon")]
    Stop {
        name: String,
        execution: String,
        #[arg(long)]
        abandon: bool,
        #[arg(long = "as")]
        user: String,
    },
    /// Disable (--disable --reason R) or enable (--enable) the transition into STAGE, as USER; with neither, show every transition
    #[command(
        after_help = "Examples:\n  nubo pipeline transition web Deploy --disable --reason 'release freeze' --as alice\n  nubo pipeline transition web Deploy --enable --as alice\n  nubo pipeline transition web"
    )]
    Transition {
        name: String,
        stage: Option<String>,
        #[arg(long, conflicts_with = "enable", requires = "reason")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long = "as")]
        user: Option<String>,
    },
    /// List a pipeline's events (state changes), oldest first: the latest 100, or one execution's
    #[command(
        after_help = "Examples:\n  nubo pipeline events web\n  nubo pipeline events web --execution EXECUTION"
    )]
    Events {
        name: String,
        #[arg(long)]
        execution: Option<String>,
    },
    /// List pipelines with their latest execution
    List,
    /// Start an execution (default: the source branch's head)
    #[command(
        after_help = "Examples:\n  nubo pipeline start web\n  nubo pipeline start web --ref v1.2 --by alice"
    )]
    Start {
        name: String,
        #[arg(long = "ref")]
        rev: Option<String>,
        /// Who started it (default: the pipeline's creator)
        #[arg(long)]
        by: Option<String>,
    },
    /// Show an execution's stages and actions (default: the latest)
    #[command(after_help = "Example:\n  nubo pipeline status web")]
    Status {
        name: String,
        execution: Option<String>,
    },
}

fn params(list: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    list.iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("--param {p:?} is not NAME=VALUE"))
        })
        .collect()
}

async fn find_user(
    pool: &sqlx::SqlitePool,
    name: &str,
) -> anyhow::Result<crate::identity::accounts::User> {
    accounts::find_by_name(pool, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", file.display()))
}

/// `nubo pipeline check`: no server needed.
pub fn check(file: &PathBuf, list: &[String]) -> anyhow::Result<()> {
    let text = read(file)?;
    let name = file.display();
    let checked = nubo_runner::pipeline::check(&text, &params(list)?);
    for w in &checked.warnings {
        eprintln!(
            "{name}:{}:{}: warning: {}: {}",
            w.pos.line, w.pos.col, w.path, w.message
        );
    }
    for e in &checked.errors {
        eprintln!(
            "{name}:{}:{}: error: {}{}{}",
            e.pos.line,
            e.pos.col,
            e.path,
            if e.path.is_empty() { "" } else { ": " },
            e.message
        );
    }
    match checked.pipeline {
        Some(p) => {
            eprintln!(
                "{name}: valid: pipeline {}, {} stages",
                p.name,
                p.stages.len()
            );
            Ok(())
        }
        None => std::process::exit(1),
    }
}

/// `nubo pipeline approve|reject`: `result` is `Approved` or `Rejected`.
async fn answer(ctx: &Ctx, a: Answer, result: &str) -> anyhow::Result<()> {
    let user = find_user(&ctx.pool, &a.user).await?;
    super::control::approve(
        ctx,
        &user,
        &a.name,
        &a.execution,
        &a.stage,
        &a.action,
        result,
        &a.comment,
    )
    .await?;
    println!("{} {}/{}", result.to_lowercase(), a.stage, a.action);
    Ok(())
}

pub async fn run(cmd: PipelineCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let pool = &ctx.pool;
    match cmd {
        PipelineCommand::Check { file, params } => check(&file, &params),
        PipelineCommand::Create {
            file,
            owner,
            params: list,
            repo,
        } => {
            let user = find_user(pool, &owner).await?;
            let checked = nubo_runner::pipeline::check(&read(&file)?, &params(&list)?);
            let text = match checked.pipeline {
                Some(mut p) => {
                    // A CodeStarSourceConnection or GitHub source names a
                    // repository elsewhere: --repo says which one here.
                    if let Some(repo) = &repo {
                        for a in p.stages.iter_mut().flat_map(|s| s.actions.iter_mut()) {
                            if a.runs() == nubo_runner::pipeline::Runs::Source {
                                a.configuration
                                    .insert("RepositoryName".into(), repo.clone());
                            }
                        }
                    }
                    serde_json::to_string(&p)?
                }
                None => {
                    for e in &checked.errors {
                        eprintln!(
                            "{}:{}:{}: error: {}: {}",
                            file.display(),
                            e.pos.line,
                            e.pos.col,
                            e.path,
                            e.message
                        );
                    }
                    std::process::exit(1);
                }
            };
            match super::read(pool, &text, &user).await? {
                Ok((decl, warnings)) => {
                    for w in warnings {
                        eprintln!("warning: {}: {}", w.path, w.message);
                    }
                    let p = super::create(pool, &decl, &user).await?;
                    println!("created pipeline {}", p.name);
                    Ok(())
                }
                Err(super::Refused(list)) => {
                    for p in list {
                        eprintln!("error: {}: {}", p.path, p.message);
                    }
                    std::process::exit(1);
                }
            }
        }
        PipelineCommand::Approve(a) => answer(ctx, a, "Approved").await,
        PipelineCommand::Reject(a) => answer(ctx, a, "Rejected").await,
        PipelineCommand::Retry {
            name,
            execution,
            stage,
            mode,
            user,
        } => {
            let user = find_user(pool, &user).await?;
            super::control::retry(ctx, &user, &name, &execution, &stage, &mode).await?;
            println!("retrying {stage}");
            Ok(())
        }
        PipelineCommand::Stop {
            name,
            execution,
            abandon,
            user,
        } => {
            let user = find_user(pool, &user).await?;
            let running = crate::builds::Running::new(crate::repos::Locks::default());
            let status =
                super::control::stop(ctx, &running, &user, &name, &execution, abandon).await?;
            println!("{status}");
            Ok(())
        }
        PipelineCommand::Transition {
            name,
            stage,
            disable,
            enable,
            reason,
            user,
        } => {
            let p = super::find(pool, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no pipeline named {name:?}"))?;
            if let (Some(stage), true) = (&stage, disable || enable) {
                let user = user.ok_or_else(|| anyhow::anyhow!("say who with --as USER"))?;
                let user = find_user(pool, &user).await?;
                let p = super::for_user(pool, &user, &p.name).await?;
                super::transitions::set(pool, &p, &user, stage, enable, reason.as_deref()).await?;
            } else if disable || enable {
                anyhow::bail!("say which stage's transition to change");
            }
            for t in super::transitions::list(pool, &p).await? {
                if stage.as_ref().is_some_and(|s| *s != t.stage) {
                    continue;
                }
                match (&t.disabled_by, &t.reason) {
                    (Some(by), Some(why)) => println!("{}\tdisabled by {by}: {why}", t.stage),
                    _ => println!("{}\tenabled", t.stage),
                }
            }
            Ok(())
        }
        PipelineCommand::Events { name, execution } => {
            let p = super::find(pool, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no pipeline named {name:?}"))?;
            let mut list = super::events::list(pool, &p.id, execution.as_deref(), 100).await?;
            list.reverse();
            for e in list {
                let what = match (&e.stage, &e.action) {
                    (Some(s), Some(a)) => format!("action {s}/{a}"),
                    (Some(s), None) => format!("stage {s}"),
                    _ => "execution".to_string(),
                };
                let summary = e.event["detail"]["summary"].as_str().unwrap_or("");
                println!(
                    "{}\t{}\t{what}\t{}\t{summary}",
                    e.time, e.execution, e.state
                );
            }
            Ok(())
        }
        PipelineCommand::List => {
            for p in super::list_all(pool).await? {
                let latest = super::executions::rows_of(pool, &p.id, 1)
                    .await?
                    .into_iter()
                    .next();
                let (repo, branch) = p.declaration.source().unwrap_or_default();
                let status = latest
                    .map(|e| format!("#{} {}", e.number, e.status))
                    .unwrap_or_else(|| "never run".into());
                println!("{}\t{repo}@{branch}\t{}\t{status}", p.name, p.owner);
            }
            Ok(())
        }
        PipelineCommand::Start { name, rev, by } => {
            let p = super::find(pool, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no pipeline named {name:?}"))?;
            let locks = crate::repos::Locks::default();
            let (commit, branch) =
                super::triggers::resolve(ctx, &locks, &p, rev.as_deref()).await?;
            let p = super::in_repo::at_commit(ctx, &locks, p, &commit).await?;
            let trigger = super::Trigger {
                kind: "manual".into(),
                by: by.unwrap_or_else(|| p.owner.clone()),
                ref_name: rev.unwrap_or_else(|| branch.clone()),
            };
            let id = super::start(ctx, &p, trigger, &commit, &branch, &BTreeMap::new()).await?;
            println!("{id}");
            eprintln!("started; a running server picks it up within a second");
            Ok(())
        }
        PipelineCommand::Status { name, execution } => {
            let p = super::find(pool, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no pipeline named {name:?}"))?;
            let row = match execution {
                Some(id) => super::executions::load(pool, &id)
                    .await?
                    .filter(|r| r.pipeline_id == p.id),
                None => super::executions::rows_of(pool, &p.id, 1)
                    .await?
                    .into_iter()
                    .next(),
            }
            .ok_or_else(|| anyhow::anyhow!("no such execution of {}", p.name))?;
            let e = super::executions::state(pool, &p.name, &row).await?;
            println!(
                "execution #{} {} ({}) at {}",
                e.number,
                e.id,
                e.status,
                &e.source_revision.commit[..e.source_revision.commit.len().min(10)]
            );
            if let Some(w) = &e.waiting {
                println!("  waiting: {w}");
            }
            if let Some(r) = &e.reason {
                println!("  {r}");
            }
            for s in &e.stages {
                println!("  {} {}", s.name, s.status.as_deref().unwrap_or("-"));
                for a in &s.actions {
                    println!(
                        "    {} {} {}",
                        a.name,
                        a.status.as_deref().unwrap_or("-"),
                        a.summary.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
    }
}
