//! The agents' side of the engine: the next command of a target (poll),
//! its acknowledgement, its bundle, and its completion, which moves the
//! target and then the deployment on.

use nubo_agent::deploy::wire::{self, HostCommand};

use super::engine::{advance, Engine};
use super::revisions::Revision;
use crate::ctx::Ctx;
use crate::db::now_ms;
use crate::error::{Error, Result};

/// The next command for a target (resent if it never acknowledged it).
pub async fn dispatch(ctx: &Ctx, engine: &Engine, target: &str) -> Result<Option<HostCommand>> {
    loop {
        let next: Option<(String, String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT c.id, c.status, c.event, c.deployment_id, dt.role FROM deployment_commands c
               JOIN deployment_targets dt ON dt.deployment_id = c.deployment_id AND dt.target_id = c.target_id
               JOIN deployments d ON d.id = c.deployment_id
             WHERE c.target_id = $1 AND dt.status = 'InProgress' AND d.status = 'InProgress'
               AND c.status IN ('Pending', 'Held', 'Dispatched', 'InProgress')
             ORDER BY d.created_at, c.position LIMIT 1",
        )
        .bind(target)
        .fetch_optional(&ctx.pool)
        .await?;
        let Some((cmd, status, event, deployment, role)) = next else {
            return Ok(None);
        };
        // Held until the engine's phase reaches it; a blue/green switch
        // (AllowTraffic, BlockTraffic) is the server's own work.
        if status == "Held"
            || (role.is_some() && matches!(event.as_str(), "AllowTraffic" | "BlockTraffic"))
        {
            return Ok(None);
        }
        if status == "InProgress" {
            // The agent asks for work while it should be running this: it
            // restarted without its record of the command.
            let m = format!("Failing in-progress lifecycle event {event}: the agent asked for new work without completing it (it restarted)");
            finish_command(
                ctx,
                engine,
                &cmd,
                false,
                wire::code::AGENT_RESTARTED,
                None,
                &m,
                "",
            )
            .await?;
            continue;
        }
        sqlx::query("UPDATE deployment_commands SET status = 'Dispatched', dispatched_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(&cmd)
            .execute(&ctx.pool)
            .await?;
        return Ok(Some(host_command(ctx, &cmd, &event, &deployment).await?));
    }
}

async fn host_command(ctx: &Ctx, cmd: &str, event: &str, deployment: &str) -> Result<HostCommand> {
    let (app, group, group_id, sha, json): (String, String, String, String, String) =
        sqlx::query_as(
            "SELECT a.name, g.name, g.id, d.bundle_sha256, d.revision_json FROM deployments d
           JOIN deploy_groups g ON g.id = d.group_id JOIN deploy_applications a ON a.id = g.app_id
         WHERE d.id = $1",
        )
        .bind(deployment)
        .fetch_one(&ctx.pool)
        .await?;
    let rev: Revision = serde_json::from_str(&json).unwrap_or(Revision {
        repo: None,
        commit: None,
        build_id: None,
    });
    Ok(HostCommand {
        id: cmd.to_string(),
        event: event.to_string(),
        deployment_id: deployment.to_string(),
        application_name: app,
        group_name: group,
        group_id,
        bundle_sha256: sha,
        bundle_commit: rev.commit,
    })
}

/// The agent took the command: it runs now.
pub async fn ack(ctx: &Ctx, target: &str, cmd: &str) -> Result<()> {
    let r = sqlx::query(
        "UPDATE deployment_commands SET status = 'InProgress', started_at = $1 WHERE id = $2 AND target_id = $3 AND status = 'Dispatched'",
    )
    .bind(now_ms())
    .bind(cmd)
    .bind(target)
    .execute(&ctx.pool)
    .await?;
    if r.rows_affected() == 0 {
        return Err(Error::Conflict(
            "this command is no longer to be run (the deployment stopped or moved on)".into(),
        ));
    }
    Ok(())
}

/// The command (of this target) if it may download its bundle now.
pub async fn bundle_of(ctx: &Ctx, target: &str, cmd: &str) -> Result<(Revision, String)> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT d.revision_json, d.bundle_sha256 FROM deployment_commands c JOIN deployments d ON d.id = c.deployment_id
         WHERE c.id = $1 AND c.target_id = $2 AND c.event = 'DownloadBundle' AND c.status = 'InProgress'",
    )
    .bind(cmd)
    .bind(target)
    .fetch_optional(&ctx.pool)
    .await?;
    let (json, sha) =
        row.ok_or_else(|| Error::NotFound("no bundle to download for this command now".into()))?;
    let rev = serde_json::from_str(&json).map_err(|e| Error::Internal(e.to_string()))?;
    Ok((rev, sha))
}

/// An agent's completion of its command.
pub async fn complete(
    ctx: &Ctx,
    engine: &Engine,
    target: &str,
    cmd: &str,
    c: &wire::Complete,
) -> Result<()> {
    let owned: Option<String> =
        sqlx::query_scalar("SELECT id FROM deployment_commands WHERE id = $1 AND target_id = $2")
            .bind(cmd)
            .bind(target)
            .fetch_optional(&ctx.pool)
            .await?;
    if owned.is_none() {
        return Err(Error::NotFound("no such command for this target".into()));
    }
    let ok = c.status == "Succeeded";
    let log = truncate(&c.log, wire::LOG_TAIL * 2);
    let message = truncate(&c.message, 4096);
    finish_command(
        ctx,
        engine,
        cmd,
        ok,
        c.error_code,
        c.script_name.as_deref(),
        &message,
        &log,
    )
    .await
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].to_string()
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn finish_command(
    ctx: &Ctx,
    engine: &Engine,
    cmd: &str,
    ok: bool,
    code: i32,
    script: Option<&str>,
    message: &str,
    log: &str,
) -> Result<()> {
    let now = now_ms();
    let done: Option<(String, String)> = sqlx::query_as(
        "UPDATE deployment_commands SET status = $1, error_code = $2, script_name = $3, message = $4, log_tail = $5, finished_at = $6
         WHERE id = $7 AND status IN ('Dispatched', 'InProgress')
         RETURNING deployment_id, target_id",
    )
    .bind(if ok { "Succeeded" } else { "Failed" })
    .bind(code as i64)
    .bind(script)
    .bind((!message.is_empty()).then_some(message))
    .bind((!log.is_empty()).then_some(log))
    .bind(now)
    .bind(cmd)
    .fetch_optional(&ctx.pool)
    .await?;
    // Already finished (a repeated report): nothing more to do.
    let Some((deployment, target)) = done else {
        return Ok(());
    };
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deployment_commands WHERE deployment_id = $1 AND target_id = $2
           AND status IN ('Pending', 'Held', 'Dispatched', 'InProgress')",
    )
    .bind(&deployment)
    .bind(&target)
    .fetch_one(&ctx.pool)
    .await?;
    let last = left == 0;
    if !ok || last {
        let mut tx = ctx.pool.begin().await?;
        sqlx::query("UPDATE deployment_targets SET status = $1, finished_at = $2 WHERE deployment_id = $3 AND target_id = $4 AND status = 'InProgress'")
            .bind(if ok { "Succeeded" } else { "Failed" })
            .bind(now)
            .bind(&deployment)
            .bind(&target)
            .execute(&mut *tx)
            .await?;
        if !ok {
            sqlx::query("UPDATE deployment_commands SET status = 'Skipped' WHERE deployment_id = $1 AND target_id = $2 AND status IN ('Pending', 'Held')")
                .bind(&deployment)
                .bind(&target)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        advance(ctx, engine, &deployment).await?;
    }
    // A blue/green phase may move on (the engine looks again).
    engine.wake.notify_one();
    engine.commands.notify_waiters();
    Ok(())
}
