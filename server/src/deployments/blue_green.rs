//! Blue/green deployments of a group of managed targets. The group has two
//! sides of `managed_count` targets (slots `side * count ..`); its app URL
//! serves the active one (blue). A deployment starts the other side
//! (green), runs ApplicationStop … ValidateService and BeforeAllowTraffic
//! there, health-checks every green target (GET `health_path` every second
//! until a 2xx or the deadline), runs BeforeBlockTraffic on blue, switches
//! the app URL to green in one step (AllowTraffic on green and BlockTraffic
//! on blue are that one moment), runs AfterAllowTraffic on green, gives
//! blue's in-flight requests the drain time, runs AfterBlockTraffic on blue,
//! and keeps blue running for `keep_blue_seconds`. A failure before the
//! switch leaves traffic on blue; after it, traffic switches back.
//! Phases live in the database, so a restarted server goes on.

use nubo_runner::appspec::Event;

use super::engine::{self, Engine, Row};
use super::{managed, BlueGreen, Group};
use crate::ctx::Ctx;
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};

pub const PROVISION: &str = "provision";
const INSTALL: &str = "install";
const HEALTH: &str = "health";
const BEFORE_BLOCK: &str = "before_block";
const AFTER_ALLOW: &str = "after_allow";
const AFTER_BLOCK: &str = "after_block";

/// How long green's targets may take to start and poll.
const PROVISION_MS: i64 = 120_000;

/// The managed target ids of one side, in slot order.
pub async fn side_ids(ctx: &Ctx, group: &Group, side: i64) -> Result<Vec<String>> {
    let n = group.managed_count;
    Ok(sqlx::query_scalar(
        "SELECT id FROM deploy_managed WHERE group_id = $1 AND slot >= $2 AND slot < $3 ORDER BY slot",
    )
    .bind(&group.id)
    .bind(side * n)
    .bind((side + 1) * n)
    .fetch_all(&ctx.pool)
    .await?)
}

/// Whether a side's targets should run now: the one serving, the one an
/// open deployment installs, and the other while it is kept.
pub async fn wanted(ctx: &Ctx, group: &Group, side: i64) -> Result<bool> {
    if group.active_side == Some(side) {
        return Ok(true);
    }
    let deploying: Option<i64> = sqlx::query_scalar(
        "SELECT green_side FROM deployments WHERE group_id = $1 AND status = 'InProgress' AND green_side = $2 LIMIT 1",
    )
    .bind(&group.id)
    .bind(side)
    .fetch_optional(&ctx.pool)
    .await?;
    if deploying.is_some() {
        return Ok(true);
    }
    let until: Option<i64> =
        sqlx::query_scalar("SELECT standby_until FROM deploy_groups WHERE id = $1")
            .bind(&group.id)
            .fetch_one(&ctx.pool)
            .await?;
    Ok(group.active_side.is_some() && until.is_some_and(|u| u > now_ms()))
}

#[derive(sqlx::FromRow)]
struct Sides {
    green_side: Option<i64>,
    blue_side: Option<i64>,
    phase_deadline: Option<i64>,
    health_checked_at: Option<i64>,
}

async fn set_phase(ctx: &Ctx, id: &str, phase: &str, deadline: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE deployments SET phase = $1, phase_deadline = $2 WHERE id = $3")
        .bind(phase)
        .bind(deadline)
        .bind(id)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

/// A target of this role that failed.
async fn failed(ctx: &Ctx, id: &str, role: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT t.name FROM deployment_targets dt JOIN deploy_targets t ON t.id = dt.target_id
         WHERE dt.deployment_id = $1 AND dt.role = $2 AND dt.status = 'Failed' LIMIT 1",
    )
    .bind(id)
    .bind(role)
    .fetch_optional(&ctx.pool)
    .await?)
}

/// Commands of this role's targets not finished yet, among `events`.
async fn unfinished(ctx: &Ctx, id: &str, role: &str, events: &[Event]) -> Result<i64> {
    let names: Vec<&str> = events.iter().map(|e| e.name()).collect();
    let names = serde_json::to_string(&names).unwrap_or_default();
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM deployment_commands c JOIN deployment_targets dt
           ON dt.deployment_id = c.deployment_id AND dt.target_id = c.target_id
         WHERE c.deployment_id = $1 AND dt.role = $2
           AND c.event IN (SELECT value FROM json_each($3))
           AND c.status IN ('Pending', 'Held', 'Dispatched', 'InProgress')",
    )
    .bind(id)
    .bind(role)
    .bind(names)
    .fetch_one(&ctx.pool)
    .await?)
}

async fn has_role(ctx: &Ctx, id: &str, role: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM deployment_targets WHERE deployment_id = $1 AND role = $2",
    )
    .bind(id)
    .bind(role)
    .fetch_one(&ctx.pool)
    .await?;
    Ok(n > 0)
}

/// Sets this role's command for `event`: its status (the server's own
/// work, or `Pending` to release it to the agent) and message.
async fn mark(
    ctx: &Ctx,
    id: &str,
    role: &str,
    event: Event,
    status: &str,
    message: Option<&str>,
) -> Result<()> {
    let now = now_ms();
    let done = matches!(status, "Succeeded" | "Failed" | "Skipped");
    let started = status != "Pending" && status != "Held";
    sqlx::query(
        "UPDATE deployment_commands SET status = $1, message = COALESCE($2, message),
             started_at = CASE WHEN $3 THEN COALESCE(started_at, $4) ELSE started_at END,
             finished_at = CASE WHEN $5 THEN $4 ELSE finished_at END
         WHERE deployment_id = $6 AND event = $7
           AND status NOT IN ('Succeeded', 'Failed', 'Skipped')
           AND target_id IN (SELECT target_id FROM deployment_targets WHERE deployment_id = $6 AND role = $8 AND status IN ('Pending', 'InProgress'))",
    )
    .bind(status)
    .bind(message)
    .bind(started)
    .bind(now)
    .bind(done)
    .bind(id)
    .bind(event.name())
    .bind(role)
    .execute(&ctx.pool)
    .await?;
    Ok(())
}

async fn switch(ctx: &Ctx, group: &Group, side: Option<i64>, until: Option<i64>) -> Result<()> {
    sqlx::query("UPDATE deploy_groups SET active_side = $1, standby_until = $2 WHERE id = $3")
        .bind(side)
        .bind(until)
        .bind(&group.id)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}

/// Moves a blue/green deployment (status InProgress) as far as it goes now.
pub(super) async fn advance(ctx: &Ctx, engine: &Engine, d: &Row, group: &Group) -> Result<()> {
    let bg = group.blue_green.clone().expect("a blue/green group");
    let s: Sides = sqlx::query_as(
        "SELECT green_side, blue_side, phase_deadline, health_checked_at FROM deployments WHERE id = $1",
    )
    .bind(&d.id)
    .fetch_one(&ctx.pool)
    .await?;
    let now = now_ms();
    let deadline = s.phase_deadline.unwrap_or(i64::MAX);
    match d.phase.as_deref().unwrap_or(PROVISION) {
        PROVISION => provision(ctx, engine, d, group, &s).await,
        INSTALL => {
            if let Some(name) = failed(ctx, &d.id, "green").await? {
                let why = format!("the deployment failed on {name}");
                return give_up(ctx, engine, d, group, &s, &why, false).await;
            }
            let before = [&Event::IN_PLACE[..], &[Event::BeforeAllowTraffic]].concat();
            if unfinished(ctx, &d.id, "green", &before).await? > 0 {
                return Ok(());
            }
            let until = now + bg.health_timeout_seconds as i64 * 1000;
            set_phase(ctx, &d.id, HEALTH, Some(until)).await?;
            engine.wake.notify_one();
            Ok(())
        }
        HEALTH => {
            if now - s.health_checked_at.unwrap_or(0) < 1000 {
                return Ok(());
            }
            sqlx::query("UPDATE deployments SET health_checked_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&d.id)
                .execute(&ctx.pool)
                .await?;
            let port = group.app_port.unwrap_or(80);
            let green = side_ids(ctx, group, s.green_side.unwrap_or(0)).await?;
            let mut problem = None;
            for (i, id) in green.iter().enumerate() {
                match managed::probe(ctx, id, port, &bg.health_path).await {
                    Ok(code) if (200..300).contains(&code) => {}
                    Ok(code) => problem = Some(format!("target {i} answered {code}")),
                    Err(e) => problem = Some(format!("target {i}: {e}")),
                }
            }
            let Some(problem) = problem else {
                let m = format!("{} answered 2xx on every green target", bg.health_path);
                mark(ctx, &d.id, "green", Event::AllowTraffic, "Held", Some(&m)).await?;
                if has_role(ctx, &d.id, "blue").await? {
                    sqlx::query("UPDATE deployment_targets SET status = 'InProgress', started_at = $1 WHERE deployment_id = $2 AND role = 'blue' AND status = 'Pending'")
                        .bind(now)
                        .bind(&d.id)
                        .execute(&ctx.pool)
                        .await?;
                    mark(
                        ctx,
                        &d.id,
                        "blue",
                        Event::BeforeBlockTraffic,
                        "Pending",
                        None,
                    )
                    .await?;
                    set_phase(ctx, &d.id, BEFORE_BLOCK, None).await?;
                    engine.commands.notify_waiters();
                    return Ok(());
                }
                return switch_now(ctx, engine, d, group, &bg, &s).await;
            };
            let m = format!(
                "waiting for GET {} to answer 2xx: {problem}",
                bg.health_path
            );
            if now > deadline {
                let why = format!(
                    "the health check failed for {} s ({problem} on GET {})",
                    bg.health_timeout_seconds, bg.health_path
                );
                mark(
                    ctx,
                    &d.id,
                    "green",
                    Event::AllowTraffic,
                    "Failed",
                    Some(&why),
                )
                .await?;
                sqlx::query("UPDATE deployment_targets SET status = 'Failed', finished_at = $1 WHERE deployment_id = $2 AND role = 'green' AND status = 'InProgress'")
                    .bind(now)
                    .bind(&d.id)
                    .execute(&ctx.pool)
                    .await?;
                return give_up(ctx, engine, d, group, &s, &why, false).await;
            }
            mark(ctx, &d.id, "green", Event::AllowTraffic, "Held", Some(&m)).await
        }
        BEFORE_BLOCK => {
            if let Some(name) = failed(ctx, &d.id, "blue").await? {
                let why = format!("BeforeBlockTraffic failed on {name}");
                return give_up(ctx, engine, d, group, &s, &why, false).await;
            }
            if unfinished(ctx, &d.id, "blue", &[Event::BeforeBlockTraffic]).await? > 0 {
                return Ok(());
            }
            switch_now(ctx, engine, d, group, &bg, &s).await
        }
        AFTER_ALLOW => {
            if let Some(name) = failed(ctx, &d.id, "green").await? {
                let why = format!("AfterAllowTraffic failed on {name}");
                return give_up(ctx, engine, d, group, &s, &why, true).await;
            }
            if unfinished(ctx, &d.id, "green", &[Event::AfterAllowTraffic]).await? > 0 {
                return Ok(());
            }
            if !has_role(ctx, &d.id, "blue").await? {
                return done(ctx, engine, d, group, &bg).await;
            }
            if now < deadline {
                return Ok(());
            }
            let m = format!("blue's requests drained ({} s)", bg.drain_seconds);
            mark(
                ctx,
                &d.id,
                "blue",
                Event::BlockTraffic,
                "Succeeded",
                Some(&m),
            )
            .await?;
            mark(
                ctx,
                &d.id,
                "blue",
                Event::AfterBlockTraffic,
                "Pending",
                None,
            )
            .await?;
            set_phase(ctx, &d.id, AFTER_BLOCK, None).await?;
            engine.commands.notify_waiters();
            Ok(())
        }
        AFTER_BLOCK => {
            if let Some(name) = failed(ctx, &d.id, "blue").await? {
                let why = format!("AfterBlockTraffic failed on {name}");
                return give_up(ctx, engine, d, group, &s, &why, true).await;
            }
            if unfinished(ctx, &d.id, "blue", &[Event::AfterBlockTraffic]).await? > 0 {
                return Ok(());
            }
            done(ctx, engine, d, group, &bg).await
        }
        other => Err(Error::Internal(format!("unknown blue/green phase {other}"))),
    }
}

/// Starts green's targets and, once every one polls, gives them (and
/// blue's) their commands.
async fn provision(ctx: &Ctx, engine: &Engine, d: &Row, group: &Group, s: &Sides) -> Result<()> {
    let now = now_ms();
    let Some(green) = s.green_side else {
        let green = group.active_side.map_or(0, |a| 1 - a);
        sqlx::query(
            "UPDATE deployments SET green_side = $1, blue_side = $2, phase_deadline = $3 WHERE id = $4",
        )
        .bind(green)
        .bind(group.active_side)
        .bind(now + PROVISION_MS)
        .bind(&d.id)
        .execute(&ctx.pool)
        .await?;
        // The engine's loop starts the side's targets.
        engine.wake.notify_one();
        return Ok(());
    };
    let n = group.managed_count;
    let ready: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT m.slot, t.id FROM deploy_managed m
           LEFT JOIN deploy_targets t ON lower(t.name) = lower(m.name) AND t.token_id = m.token_id AND t.last_seen_at >= m.started_at
         WHERE m.group_id = $1 AND m.slot >= $2 AND m.slot < $3 ORDER BY m.slot",
    )
    .bind(&group.id)
    .bind(green * n)
    .bind((green + 1) * n)
    .fetch_all(&ctx.pool)
    .await?;
    let green_targets: Vec<String> = ready.iter().filter_map(|r| r.1.clone()).collect();
    if green_targets.len() < n as usize {
        if now > s.phase_deadline.unwrap_or(i64::MAX) {
            let why = format!(
                "{} of {n} green targets started and polled within {} s",
                green_targets.len(),
                PROVISION_MS / 1000
            );
            return give_up(ctx, engine, d, group, s, &why, false).await;
        }
        return Ok(());
    }
    let blue_targets: Vec<String> = match s.blue_side {
        Some(b) => sqlx::query_scalar(
            "SELECT t.id FROM deploy_managed m JOIN deploy_targets t ON lower(t.name) = lower(m.name) AND t.token_id = m.token_id
             WHERE m.group_id = $1 AND m.slot >= $2 AND m.slot < $3 ORDER BY m.slot",
        )
        .bind(&group.id)
        .bind(b * n)
        .bind((b + 1) * n)
        .fetch_all(&ctx.pool)
        .await?,
        None => vec![],
    };
    let green_events = [
        &Event::IN_PLACE[..],
        &[
            Event::BeforeAllowTraffic,
            Event::AllowTraffic,
            Event::AfterAllowTraffic,
        ],
    ]
    .concat();
    let blue_events = [
        Event::BeforeBlockTraffic,
        Event::BlockTraffic,
        Event::AfterBlockTraffic,
    ];
    let mut tx = ctx.pool.begin().await?;
    let all = green_targets
        .iter()
        .map(|t| (t, "green", &green_events[..]))
        .chain(blue_targets.iter().map(|t| (t, "blue", &blue_events[..])));
    for (position, (t, role, events)) in all.enumerate() {
        let green = role == "green";
        sqlx::query(
            "INSERT INTO deployment_targets (deployment_id, target_id, position, status, role, started_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&d.id)
        .bind(t)
        .bind(position as i64)
        .bind(if green { "InProgress" } else { "Pending" })
        .bind(role)
        .bind(green.then_some(now))
        .execute(&mut *tx)
        .await?;
        for (i, e) in events.iter().enumerate() {
            let held = !green || matches!(e, Event::AllowTraffic | Event::AfterAllowTraffic);
            sqlx::query(
                "INSERT INTO deployment_commands (id, deployment_id, target_id, event, position, status) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new_id())
            .bind(&d.id)
            .bind(t)
            .bind(e.name())
            .bind(i as i64)
            .bind(if held { "Held" } else { "Pending" })
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("UPDATE deployments SET phase = $1, phase_deadline = NULL WHERE id = $2")
        .bind(INSTALL)
        .bind(&d.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    engine.commands.notify_waiters();
    Ok(())
}

/// The switch: the app URL serves green from the next request on.
async fn switch_now(
    ctx: &Ctx,
    engine: &Engine,
    d: &Row,
    group: &Group,
    bg: &BlueGreen,
    s: &Sides,
) -> Result<()> {
    // Blue runs on until the deployment ends (then for the keep time).
    switch(ctx, group, s.green_side, Some(i64::MAX)).await?;
    let m = "traffic switched to the green targets";
    mark(
        ctx,
        &d.id,
        "green",
        Event::AllowTraffic,
        "Succeeded",
        Some(m),
    )
    .await?;
    mark(
        ctx,
        &d.id,
        "green",
        Event::AfterAllowTraffic,
        "Pending",
        None,
    )
    .await?;
    let drain = format!("draining blue's requests for {} s", bg.drain_seconds);
    mark(
        ctx,
        &d.id,
        "blue",
        Event::BlockTraffic,
        "InProgress",
        Some(&drain),
    )
    .await?;
    let until = now_ms() + bg.drain_seconds as i64 * 1000;
    set_phase(ctx, &d.id, AFTER_ALLOW, Some(until)).await?;
    tracing::info!(deployment = %d.id, group = %group.name, side = ?s.green_side, "traffic switched");
    engine.commands.notify_waiters();
    Ok(())
}

async fn done(ctx: &Ctx, engine: &Engine, d: &Row, group: &Group, bg: &BlueGreen) -> Result<()> {
    let active: Option<i64> =
        sqlx::query_scalar("SELECT active_side FROM deploy_groups WHERE id = $1")
            .bind(&group.id)
            .fetch_one(&ctx.pool)
            .await?;
    switch(
        ctx,
        group,
        active,
        Some(now_ms() + bg.keep_blue_seconds as i64 * 1000),
    )
    .await?;
    engine::succeed(ctx, engine, d).await
}

/// Ends the deployment Failed; traffic goes back to blue if it had moved.
async fn give_up(
    ctx: &Ctx,
    engine: &Engine,
    d: &Row,
    group: &Group,
    s: &Sides,
    why: &str,
    switched: bool,
) -> Result<()> {
    let message = if switched {
        // Green keeps running for the drain time: requests it took finish.
        let drain = group
            .blue_green
            .as_ref()
            .map_or(0, |b| b.drain_seconds as i64);
        switch(ctx, group, s.blue_side, Some(now_ms() + drain * 1000)).await?;
        tracing::info!(deployment = %d.id, group = %group.name, "traffic switched back");
        match s.blue_side {
            Some(_) => format!("{why}; traffic switched back to the previous targets"),
            None => format!("{why}; the app URL serves nothing until a deployment succeeds"),
        }
    } else if s.blue_side.is_some() {
        format!("{why}; traffic stayed on the previous targets")
    } else {
        why.to_string()
    };
    let now = now_ms();
    sqlx::query("UPDATE deployment_commands SET status = 'Skipped', finished_at = $1 WHERE deployment_id = $2 AND status = 'InProgress' AND event IN ('AllowTraffic', 'BlockTraffic')")
        .bind(now)
        .bind(&d.id)
        .execute(&ctx.pool)
        .await?;
    sqlx::query("UPDATE deployment_targets SET status = 'Skipped', finished_at = $1 WHERE deployment_id = $2 AND role IS NOT NULL AND status = 'InProgress'")
        .bind(now)
        .bind(&d.id)
        .execute(&ctx.pool)
        .await?;
    engine::fail(ctx, engine, d, group, &message).await
}

/// A blue/green deployment was stopped: traffic stays where it is, and the
/// other side is kept for the keep time as after a switch.
pub async fn stopped(ctx: &Ctx, group: &Group) -> Result<()> {
    let Some(bg) = &group.blue_green else {
        return Ok(());
    };
    sqlx::query("UPDATE deploy_groups SET standby_until = $1 WHERE id = $2 AND standby_until = $3")
        .bind(now_ms() + bg.keep_blue_seconds as i64 * 1000)
        .bind(&group.id)
        .bind(i64::MAX)
        .execute(&ctx.pool)
        .await?;
    Ok(())
}
