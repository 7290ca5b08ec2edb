//! Deployments (CodeDeploy): applications, deployment groups that select
//! targets by tags, deployment configurations, and deployments as state
//! machines in the database (`engine` moves them; the agents poll for one
//! command per target and lifecycle event through `agent_api`).
//!
//! Who may do what: an application belongs to its creator (or an
//! administrator). Targets belong to the owner of the agent token they
//! registered with (administrators mint tokens for a user), and a group
//! reaches only its owner's targets — an administrator's, every target —
//! so nobody can run code on a machine that was not enrolled for them.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::ctx::Ctx;
use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::identity::accounts::User;

pub mod agent_api;
pub mod agents;
pub mod api;
pub mod app_proxy;
pub mod blue_green;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod managed;
pub mod managed_container;
pub mod pages;
pub mod pipeline;
pub mod revisions;
pub mod view;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Application {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub owner: String,
    #[serde(skip)]
    pub owner_id: String,
    #[serde(skip)]
    pub owner_admin: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Group {
    pub id: String,
    #[serde(skip)]
    pub app_id: String,
    pub application: String,
    pub name: String,
    pub config: String,
    pub tags: BTreeMap<String, String>,
    pub auto_rollback: bool,
    /// A second deployment waits for the running one (true) or is refused.
    pub queue: bool,
    pub created_at: i64,
    /// Targets Nubo runs for the group itself (0: none).
    pub managed_count: i64,
    /// The image its managed targets run as containers on the container
    /// backend (local sandboxes when absent).
    pub managed_image: Option<String>,
    /// The port its app listens on, served at the app URL.
    pub app_port: Option<u16>,
    /// Blue/green (two sides of managed targets; traffic switches between
    /// them); in place when absent.
    pub blue_green: Option<BlueGreen>,
    /// The side (0 or 1) its app URL serves, for a blue/green group.
    pub active_side: Option<i64>,
}

/// A blue/green group's settings.
#[derive(Debug, Clone, serde::Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BlueGreen {
    /// The path the green targets must answer with a 2xx before the switch.
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// How long they may take to answer it.
    #[serde(default = "default_health_timeout")]
    pub health_timeout_seconds: u64,
    /// How long blue's in-flight requests have after the switch.
    #[serde(default = "default_drain")]
    pub drain_seconds: u64,
    /// How long blue keeps running after a successful switch (at least the
    /// drain time).
    #[serde(default = "default_keep")]
    pub keep_blue_seconds: u64,
}

/// A minimum-healthy rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinHealthy {
    HostCount(i64),
    FleetPercent(i64),
}

impl MinHealthy {
    /// Healthy targets needed out of `n` (fractions round up, as AWS does).
    pub fn of(self, n: i64) -> i64 {
        match self {
            MinHealthy::HostCount(c) => c,
            MinHealthy::FleetPercent(p) => (n * p + 99) / 100,
        }
    }
}

/// AWS's built-in configurations.
pub const BUILTIN: &[(&str, MinHealthy)] = &[
    ("CodeDeployDefault.OneAtATime", MinHealthy::FleetPercent(99)),
    (
        "CodeDeployDefault.HalfAtATime",
        MinHealthy::FleetPercent(50),
    ),
    ("CodeDeployDefault.AllAtOnce", MinHealthy::HostCount(0)),
];
pub const DEFAULT_CONFIG: &str = "CodeDeployDefault.OneAtATime";

/// The rule of a configuration name, built-in or custom.
pub async fn config(pool: &SqlitePool, name: &str) -> Result<MinHealthy> {
    if let Some((_, m)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return Ok(*m);
    }
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT kind, value FROM deploy_configs WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    match row {
        Some((k, v)) if k == "HOST_COUNT" => Ok(MinHealthy::HostCount(v)),
        Some((_, v)) => Ok(MinHealthy::FleetPercent(v)),
        None => Err(Error::Invalid {
            field: "config",
            message: format!(
                "no deployment configuration named {name:?} (built in: {})",
                BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Config {
    pub name: String,
    /// HOST_COUNT or FLEET_PERCENT.
    pub kind: String,
    pub value: i64,
    pub builtin: bool,
}

pub async fn list_configs(pool: &SqlitePool) -> Result<Vec<Config>> {
    let mut out: Vec<Config> = BUILTIN
        .iter()
        .map(|(n, m)| {
            let (kind, value) = match m {
                MinHealthy::HostCount(v) => ("HOST_COUNT", *v),
                MinHealthy::FleetPercent(v) => ("FLEET_PERCENT", *v),
            };
            Config {
                name: n.to_string(),
                kind: kind.into(),
                value,
                builtin: true,
            }
        })
        .collect();
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT name, kind, value FROM deploy_configs ORDER BY name")
            .fetch_all(pool)
            .await?;
    out.extend(rows.into_iter().map(|(name, kind, value)| Config {
        name,
        kind,
        value,
        builtin: false,
    }));
    Ok(out)
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: what,
            message: format!("{what} {name:?} must be 1-100 letters, digits, '-', '_' or '.'"),
        })
    }
}

pub async fn create_config(
    pool: &SqlitePool,
    user: &User,
    name: &str,
    kind: &str,
    value: i64,
) -> Result<Config> {
    check_name("name", name)?;
    if name.starts_with("CodeDeployDefault.") {
        return Err(Error::Invalid {
            field: "name",
            message: "names starting CodeDeployDefault. are AWS's built-in configurations".into(),
        });
    }
    match kind {
        "HOST_COUNT" if value >= 0 => {}
        "FLEET_PERCENT" if (0..=99).contains(&value) => {}
        "HOST_COUNT" | "FLEET_PERCENT" => {
            return Err(Error::Invalid {
                field: "value",
                message: "HOST_COUNT takes 0 or more, FLEET_PERCENT 0 to 99".into(),
            })
        }
        _ => {
            return Err(Error::Invalid {
                field: "kind",
                message: "kind must be HOST_COUNT or FLEET_PERCENT".into(),
            })
        }
    }
    let r = sqlx::query("INSERT INTO deploy_configs (name, kind, value, created_by, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(name)
        .bind(kind)
        .bind(value)
        .bind(&user.id)
        .bind(now_ms())
        .execute(pool)
        .await;
    match r {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::Conflict(format!(
            "a configuration named {name:?} exists"
        ))),
        r => {
            r?;
            Ok(Config {
                name: name.into(),
                kind: kind.into(),
                value,
                builtin: false,
            })
        }
    }
}

const APP_SELECT: &str = "SELECT a.id, a.name, u.name, a.owner_id, u.is_admin, a.created_at
     FROM deploy_applications a JOIN users u ON u.id = a.owner_id";

type AppRow = (String, String, String, String, bool, i64);

fn app_of(r: AppRow) -> Application {
    Application {
        id: r.0,
        name: r.1,
        owner: r.2,
        owner_id: r.3,
        owner_admin: r.4,
        created_at: r.5,
    }
}

pub async fn create_application(pool: &SqlitePool, user: &User, name: &str) -> Result<Application> {
    check_name("name", name)?;
    let id = new_id();
    let r = sqlx::query(
        "INSERT INTO deploy_applications (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(name)
    .bind(&user.id)
    .bind(now_ms())
    .execute(pool)
    .await;
    match r {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::Conflict(format!(
                "an application named {name:?} exists"
            )))
        }
        r => r?,
    };
    find_application(pool, name)
        .await?
        .ok_or_else(|| Error::Internal("lost the application".into()))
}

pub async fn find_application(pool: &SqlitePool, name: &str) -> Result<Option<Application>> {
    let row: Option<AppRow> =
        sqlx::query_as(&format!("{APP_SELECT} WHERE lower(a.name) = lower($1)"))
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(app_of))
}

pub async fn application_by_id(pool: &SqlitePool, id: &str) -> Result<Application> {
    let row: AppRow = sqlx::query_as(&format!("{APP_SELECT} WHERE a.id = $1"))
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(app_of(row))
}

/// The application, if `user` manages it.
pub async fn application_for(pool: &SqlitePool, user: &User, name: &str) -> Result<Application> {
    match find_application(pool, name).await? {
        Some(a) if a.owner_id == user.id || user.admin => Ok(a),
        _ => Err(Error::NotFound(format!("no application named {name:?}"))),
    }
}

pub async fn list_applications(pool: &SqlitePool, user: &User) -> Result<Vec<Application>> {
    let rows: Vec<AppRow> = sqlx::query_as(&format!(
        "{APP_SELECT} WHERE a.owner_id = $1 OR $2 ORDER BY lower(a.name)"
    ))
    .bind(&user.id)
    .bind(user.admin)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(app_of).collect())
}

const GROUP_SELECT: &str =
    "SELECT g.id, g.app_id, a.name AS app, g.name, g.config, g.tags_json, g.auto_rollback, g.queue,
        g.created_at, g.managed_count, g.app_port, g.blue_green_json, g.active_side, g.managed_image
     FROM deploy_groups g JOIN deploy_applications a ON a.id = g.app_id";

#[derive(sqlx::FromRow)]
struct GroupRow {
    id: String,
    app_id: String,
    app: String,
    name: String,
    config: String,
    tags_json: String,
    auto_rollback: bool,
    queue: bool,
    created_at: i64,
    managed_count: i64,
    app_port: Option<i64>,
    blue_green_json: Option<String>,
    active_side: Option<i64>,
    managed_image: Option<String>,
}

fn group_of(r: GroupRow) -> Group {
    Group {
        id: r.id,
        app_id: r.app_id,
        application: r.app,
        name: r.name,
        config: r.config,
        tags: serde_json::from_str(&r.tags_json).unwrap_or_default(),
        auto_rollback: r.auto_rollback,
        queue: r.queue,
        created_at: r.created_at,
        managed_count: r.managed_count,
        managed_image: r.managed_image,
        app_port: r.app_port.and_then(|p| u16::try_from(p).ok()),
        blue_green: r
            .blue_green_json
            .and_then(|j| serde_json::from_str(&j).ok()),
        active_side: r.active_side,
    }
}

pub struct NewGroup {
    pub name: String,
    pub config: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub auto_rollback: bool,
    pub queue: bool,
    /// Managed targets to run (0: the group selects enrolled ones by tags).
    pub managed_count: i64,
    /// Their image, for containers on the container backend.
    pub managed_image: Option<String>,
    pub app_port: Option<u16>,
    pub blue_green: Option<BlueGreen>,
}

/// The most managed targets a group may ask for.
pub const MAX_MANAGED: i64 = 10;

pub async fn create_group(ctx: &Ctx, app: &Application, g: NewGroup) -> Result<Group> {
    let pool = &ctx.pool;
    check_name("name", &g.name)?;
    let config_name = g
        .config
        .clone()
        .unwrap_or_else(|| DEFAULT_CONFIG.to_string());
    config(pool, &config_name).await?;
    let mut g = g;
    if !(0..=MAX_MANAGED).contains(&g.managed_count) {
        return Err(Error::Invalid {
            field: "managed",
            message: format!("a group runs 0 to {MAX_MANAGED} managed targets"),
        });
    }
    if g.managed_count > 0 {
        if !g.tags.is_empty() {
            return Err(Error::Invalid {
                field: "tags",
                message: "a group of managed targets selects them itself; leave tags out".into(),
            });
        }
        let (k, v) = managed::tag(&app.name, &g.name);
        g.tags.insert(k, v);
    }
    if g.managed_image.is_some() && g.managed_count == 0 {
        return Err(Error::Invalid {
            field: "managed",
            message:
                "an image is for managed targets: {\"managed\": {\"count\", \"port\", \"image\"}}"
                    .into(),
        });
    }
    if let Some(image) = &g.managed_image {
        crate::engine::image_available(&ctx.settings, image).await?;
    }
    if g.app_port == Some(0) {
        return Err(Error::Invalid {
            field: "port",
            message: "the app's port is 1 to 65535".into(),
        });
    }
    if let Some(bg) = &g.blue_green {
        check_blue_green(bg, g.managed_count, g.app_port)?;
    }
    if g.tags.is_empty() {
        return Err(Error::Invalid {
            field: "tags",
            message: "a deployment group selects its targets by at least one tag".into(),
        });
    }
    let r = sqlx::query(
        "INSERT INTO deploy_groups (id, app_id, name, config, tags_json, auto_rollback, queue, created_at, managed_count, app_port, blue_green_json, managed_image)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(new_id())
    .bind(&app.id)
    .bind(&g.name)
    .bind(&config_name)
    .bind(serde_json::to_string(&g.tags).unwrap_or_default())
    .bind(g.auto_rollback)
    .bind(g.queue)
    .bind(now_ms())
    .bind(g.managed_count)
    .bind(g.app_port.map(i64::from))
    .bind(
        g.blue_green
            .as_ref()
            .map(|b| serde_json::to_string(b).unwrap_or_default()),
    )
    .bind(&g.managed_image)
    .execute(pool)
    .await;
    match r {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::Conflict(format!(
                "{} already has a group named {:?}",
                app.name, g.name
            )))
        }
        r => r?,
    };
    find_group(pool, app, &g.name)
        .await?
        .ok_or_else(|| Error::Internal("lost the group".into()))
}

pub async fn find_group(pool: &SqlitePool, app: &Application, name: &str) -> Result<Option<Group>> {
    let row: Option<GroupRow> = sqlx::query_as(&format!(
        "{GROUP_SELECT} WHERE g.app_id = $1 AND lower(g.name) = lower($2)"
    ))
    .bind(&app.id)
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(group_of))
}

pub async fn group_by_id(pool: &SqlitePool, id: &str) -> Result<Group> {
    let row: GroupRow = sqlx::query_as(&format!("{GROUP_SELECT} WHERE g.id = $1"))
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(group_of(row))
}

pub async fn group_for(
    pool: &SqlitePool,
    user: &User,
    app: &str,
    group: &str,
) -> Result<(Application, Group)> {
    let a = application_for(pool, user, app).await?;
    let g = find_group(pool, &a, group)
        .await?
        .ok_or_else(|| Error::NotFound(format!("{app} has no deployment group {group:?}")))?;
    Ok((a, g))
}

pub async fn list_groups(pool: &SqlitePool, app: &Application) -> Result<Vec<Group>> {
    let rows: Vec<GroupRow> = sqlx::query_as(&format!(
        "{GROUP_SELECT} WHERE g.app_id = $1 ORDER BY lower(g.name)"
    ))
    .bind(&app.id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(group_of).collect())
}

pub fn default_health_path() -> String {
    "/".into()
}
pub fn default_health_timeout() -> u64 {
    60
}
pub fn default_drain() -> u64 {
    5
}
pub fn default_keep() -> u64 {
    300
}

/// Checks a group's blue/green settings.
pub fn check_blue_green(bg: &BlueGreen, managed_count: i64, port: Option<u16>) -> Result<()> {
    let bad = |message: String| Error::Invalid {
        field: "blue_green",
        message,
    };
    if managed_count == 0 || port.is_none() {
        return Err(bad(
            "blue/green needs managed targets and the app's port: {\"managed\": {\"count\", \"port\"}}"
                .into(),
        ));
    }
    let p = &bg.health_path;
    if !p.starts_with('/') || p.len() > 1024 || p.chars().any(|c| c.is_control() || c == ' ') {
        return Err(bad(format!(
            "health_path {p:?} must be a path starting with / (no spaces)"
        )));
    }
    if !(1..=3600).contains(&bg.health_timeout_seconds) {
        return Err(bad("health_timeout_seconds is 1 to 3600".into()));
    }
    if bg.drain_seconds > 3600 {
        return Err(bad("drain_seconds is 0 to 3600".into()));
    }
    if bg.keep_blue_seconds < bg.drain_seconds || bg.keep_blue_seconds > 7 * 86_400 {
        return Err(bad(format!(
            "keep_blue_seconds is {} (the drain time) to 604800",
            bg.drain_seconds
        )));
    }
    Ok(())
}
