//! A pipeline's incoming webhook: `POST /api/v1/pipelines/{name}/webhook/trigger`
//! with the body signed as Nubo signs its own deliveries
//! (`X-Nubo-Signature-256: sha256=<HMAC-SHA256 of the body, hex>`) starts
//! an execution — of the source branch, or the body's `ref` — as the user
//! who set the webhook up (who must still manage the pipeline). A call that
//! names a delivery (`X-Nubo-Delivery`) is started once: a retry of it is
//! answered with the execution it started.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::SqlitePool;

use super::{Pipeline, Trigger};
use crate::ctx::Ctx;
use crate::db::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};

const SECRET_CONTEXT: &[u8] = b"nubo:pipeline-webhook-secret";
/// The largest body a trigger call may carry.
pub const MAX_BODY: usize = 64 * 1024;

/// Who set the webhook up, and when (RFC 3339); none when it is off.
pub async fn status(pool: &SqlitePool, p: &Pipeline) -> Result<Option<(String, String)>> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT u.name, w.created_at FROM pipeline_webhooks w JOIN users u ON u.id = w.created_by
         WHERE w.pipeline_id = $1",
    )
    .bind(&p.id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(by, at)| (by, rfc3339(at))))
}

/// Turns the webhook on with a new secret (the old one stops working);
/// answers the secret, which is shown only now.
pub async fn enable(ctx: &Ctx, p: &Pipeline, user: &User) -> Result<String> {
    let mut bytes = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let secret = hex::encode(bytes);
    let (mut tx, key) = ctx.master.sealing(&ctx.pool).await?;
    let sealed = nubo_git::crypto::seal(&key, SECRET_CONTEXT, secret.as_bytes());
    sqlx::query(
        "INSERT INTO pipeline_webhooks (pipeline_id, sealed_secret, created_by, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (pipeline_id) DO UPDATE SET sealed_secret = excluded.sealed_secret,
             created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(&p.id)
    .bind(&sealed)
    .bind(&user.id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(pipeline = %p.name, by = %user.name, "pipeline webhook secret set");
    Ok(secret)
}

pub async fn disable(pool: &SqlitePool, p: &Pipeline) -> Result<()> {
    sqlx::query("DELETE FROM pipeline_webhooks WHERE pipeline_id = $1")
        .bind(&p.id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The same answer for an unknown pipeline, one without a webhook and a
/// bad signature: a caller learns nothing without the secret.
fn refused() -> Error {
    Error::Unauthorized("the signature does not match this pipeline's webhook secret".into())
}

/// Checks the call's signature; answers the pipeline and the user its
/// executions run as.
pub async fn verify(
    ctx: &Ctx,
    name: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(Pipeline, User)> {
    let p = super::find(&ctx.pool, name).await?.ok_or_else(refused)?;
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT sealed_secret, created_by FROM pipeline_webhooks WHERE pipeline_id = $1",
    )
    .bind(&p.id)
    .fetch_optional(&ctx.pool)
    .await?;
    let (sealed, by) = row.ok_or_else(refused)?;
    let given = signature
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(refused)?;
    let secret = ctx.master.open(SECRET_CONTEXT, &sealed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| refused())?;
    let user = accounts::find_by_id(&ctx.pool, &by)
        .await?
        .ok_or_else(|| Error::Conflict("the webhook's owner no longer exists".into()))?;
    if !(user.admin || user.id == p.owner_id) {
        return Err(Error::Conflict(format!(
            "{} set this webhook up but no longer manages the pipeline: set it up again",
            user.name
        )));
    }
    Ok((p, user))
}

/// What a trigger call may ask for.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    #[serde(default, rename = "ref")]
    pub ref_name: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// Starts the execution a verified call asks for; answers its id and
/// whether it was started by an earlier call with the same delivery id.
pub async fn trigger(
    ctx: &Ctx,
    locks: &crate::repos::Locks,
    p: Pipeline,
    user: &User,
    delivery: Option<&str>,
    call: Call,
) -> Result<(String, bool)> {
    if let Some(d) = delivery {
        if d.is_empty() || d.len() > 200 {
            return Err(Error::invalid(
                "X-Nubo-Delivery",
                "a delivery id has 1 to 200 characters",
            ));
        }
        let seen: Option<String> = sqlx::query_scalar(
            "SELECT execution_id FROM pipeline_webhook_calls WHERE pipeline_id = $1 AND delivery = $2",
        )
        .bind(&p.id)
        .bind(d)
        .fetch_optional(&ctx.pool)
        .await?;
        if let Some(id) = seen {
            return Ok((id, true));
        }
    }
    let (commit, branch) =
        super::triggers::resolve(ctx, locks, &p, call.ref_name.as_deref()).await?;
    let p = super::in_repo::at_commit(ctx, locks, p, &commit).await?;
    let trigger = Trigger {
        kind: "webhook".into(),
        by: user.name.clone(),
        ref_name: call.ref_name.unwrap_or_else(|| branch.clone()),
    };
    let id = super::start(ctx, &p, trigger, &commit, &branch, &call.variables).await?;
    if let Some(d) = delivery {
        sqlx::query(
            "INSERT INTO pipeline_webhook_calls (pipeline_id, delivery, execution_id, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&p.id)
        .bind(d)
        .bind(&id)
        .bind(now_ms())
        .execute(&ctx.pool)
        .await?;
    }
    Ok((id, false))
}

/// Master key rotation: every pipeline webhook's secret re-sealed.
pub async fn reseal(
    conn: &mut sqlx::SqliteConnection,
    old: &nubo_git::crypto::SecretKey,
    new: &nubo_git::crypto::SecretKey,
) -> Result<()> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT pipeline_id, sealed_secret FROM pipeline_webhooks")
            .fetch_all(&mut *conn)
            .await?;
    for (id, sealed) in &rows {
        let what = format!("pipeline {id}'s webhook secret");
        sqlx::query("UPDATE pipeline_webhooks SET sealed_secret = $1 WHERE pipeline_id = $2")
            .bind(crate::keys::reseal_value(
                old,
                new,
                SECRET_CONTEXT,
                sealed,
                &what,
            )?)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
