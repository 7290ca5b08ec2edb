//! Deployment agents: the tokens administrators mint for them (stored as
//! SHA-256; a token can only register targets and poll), and the targets
//! that registered, with when each was last heard from.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::db::{new_id, now_ms};
use crate::error::{Error, Result};
use crate::identity::accounts::User;

/// A target not heard from for this long is offline (agents poll at least
/// every 20 s and send a heartbeat every 15 s while they run a hook).
pub const OFFLINE_AFTER_MS: i64 = 45_000;

const PREFIX: &str = "nubo_dat_";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentToken {
    pub id: String,
    pub description: String,
    /// Whose applications may deploy to its targets.
    pub owner: String,
    pub created_at: i64,
    pub revoked: bool,
}

/// Mints a token for `owner`'s targets; answers it (shown once) and its id.
pub async fn create_token(
    pool: &SqlitePool,
    by: &User,
    owner: &User,
    description: &str,
) -> Result<(String, String)> {
    let description = description.trim();
    if description.is_empty() || description.len() > 200 {
        return Err(Error::Invalid {
            field: "description",
            message: "describe the token in 1-200 characters".into(),
        });
    }
    let token = format!("{PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
    let id = new_id();
    sqlx::query(
        "INSERT INTO deploy_agent_tokens (id, description, token_hash, owner_id, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(description)
    .bind(hash(&token))
    .bind(&owner.id)
    .bind(&by.id)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok((token, id))
}

pub async fn list_tokens(pool: &SqlitePool) -> Result<Vec<AgentToken>> {
    let rows: Vec<(String, String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT t.id, t.description, u.name, t.created_at, t.revoked_at
         FROM deploy_agent_tokens t JOIN users u ON u.id = t.owner_id ORDER BY t.created_at",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, description, owner, created_at, revoked)| AgentToken {
            id,
            description,
            owner,
            created_at,
            revoked: revoked.is_some(),
        })
        .collect())
}

pub async fn revoke_token(pool: &SqlitePool, id: &str) -> Result<()> {
    let r = sqlx::query(
        "UPDATE deploy_agent_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(id)
    .execute(pool)
    .await?;
    if r.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no active agent token {id:?}")));
    }
    Ok(())
}

/// The token's id, if it is a live agent token.
pub async fn verify(pool: &SqlitePool, token: &str) -> Result<Option<String>> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM deploy_agent_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    Ok(id)
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Registers (or re-registers) the target `name` under the token; a name
/// held by another token is refused.
pub async fn register(
    pool: &SqlitePool,
    token_id: &str,
    name: &str,
    tags: &BTreeMap<String, String>,
    version: &str,
) -> Result<String> {
    if !name_ok(name) {
        return Err(Error::BadRequest(format!(
            "a target name is 1-100 letters, digits, '-', '_' or '.', not {name:?}"
        )));
    }
    if tags.len() > 50
        || tags
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 128 || v.len() > 256)
    {
        return Err(Error::BadRequest(
            "at most 50 tags, keys 1-128 and values up to 256 characters".into(),
        ));
    }
    let now = now_ms();
    let tags_json = serde_json::to_string(tags).unwrap_or_default();
    let existing: Option<(String, String)> =
        sqlx::query_as("SELECT id, token_id FROM deploy_targets WHERE lower(name) = lower($1)")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    match existing {
        Some((id, t)) if t == token_id => {
            sqlx::query("UPDATE deploy_targets SET tags_json = $1, agent_version = $2, last_seen_at = $3 WHERE id = $4")
                .bind(&tags_json)
                .bind(version)
                .bind(now)
                .bind(&id)
                .execute(pool)
                .await?;
            Ok(id)
        }
        Some(_) => Err(Error::Conflict(format!(
            "a target named {name:?} is registered with another token"
        ))),
        None => {
            let id = new_id();
            sqlx::query(
                "INSERT INTO deploy_targets (id, name, token_id, tags_json, agent_version, registered_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&id)
            .bind(name)
            .bind(token_id)
            .bind(&tags_json)
            .bind(version)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(id)
        }
    }
}

/// The target `name` of this token, marked as heard from now.
pub async fn touch(pool: &SqlitePool, token_id: &str, name: &str) -> Result<String> {
    let id: Option<String> = sqlx::query_scalar(
        "UPDATE deploy_targets SET last_seen_at = $1 WHERE lower(name) = lower($2) AND token_id = $3 RETURNING id",
    )
    .bind(now_ms())
    .bind(name)
    .bind(token_id)
    .fetch_optional(pool)
    .await?;
    id.ok_or_else(|| {
        Error::NotFound(format!(
            "no target {name:?} registered with this token; register first"
        ))
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Target {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub online: bool,
    /// The revision of the last deployment that succeeded on it.
    pub revision: Option<String>,
    pub owner: String,
    pub last_seen_at: i64,
    pub agent_version: String,
}

const TARGET_SELECT: &str = "SELECT d.id, d.name, d.tags_json, d.last_seen_at, d.revision, u.name, d.agent_version
     FROM deploy_targets d JOIN deploy_agent_tokens t ON t.id = d.token_id JOIN users u ON u.id = t.owner_id";

type TargetRow = (String, String, String, i64, Option<String>, String, String);

fn target_of(r: TargetRow, now: i64) -> Target {
    Target {
        id: r.0,
        name: r.1,
        tags: serde_json::from_str(&r.2).unwrap_or_default(),
        online: now - r.3 < OFFLINE_AFTER_MS,
        last_seen_at: r.3,
        revision: r.4,
        owner: r.5,
        agent_version: r.6,
    }
}

/// The targets `user` may deploy to (an administrator: all), live ones of
/// revoked tokens excluded.
pub async fn list_for(pool: &SqlitePool, user: &User) -> Result<Vec<Target>> {
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "{TARGET_SELECT} WHERE t.revoked_at IS NULL AND (t.owner_id = $1 OR $2) ORDER BY lower(d.name)"
    ))
    .bind(&user.id)
    .bind(user.admin)
    .fetch_all(pool)
    .await?;
    let now = now_ms();
    Ok(rows.into_iter().map(|r| target_of(r, now)).collect())
}

/// The targets a group of an application owned by `owner_id` (an
/// administrator when `admin`) selects: every tag matches.
pub async fn select(
    pool: &SqlitePool,
    owner_id: &str,
    admin: bool,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<Target>> {
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "{TARGET_SELECT} WHERE t.revoked_at IS NULL AND (t.owner_id = $1 OR $2) ORDER BY lower(d.name)"
    ))
    .bind(owner_id)
    .bind(admin)
    .fetch_all(pool)
    .await?;
    let now = now_ms();
    Ok(rows
        .into_iter()
        .map(|r| target_of(r, now))
        .filter(|t| tags.iter().all(|(k, v)| t.tags.get(k) == Some(v)))
        .collect())
}
