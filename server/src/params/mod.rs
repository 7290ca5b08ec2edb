//! Params: the parameter store and the secrets manager (AWS's SSM
//! parameters and Secrets Manager secrets, as buildspecs read them).
//! Values are sealed by the master key with their kind and name as
//! associated data; they are never listed or shown again. Reading one takes
//! an IAM permission on its ARN.

pub mod api;
pub mod cli;
pub mod pages;

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::db::{now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::identity::policy::canonical_name;
use crate::keys::MasterKey;

/// Associated data of a stored value: its kind and name, so a sealed value
/// moved to another name does not open.
pub fn value_context(kind: &str, name: &str) -> Vec<u8> {
    format!("nubo:stored:{kind}:{name}").into_bytes()
}

/// A stored value for a build of `owner`'s project: only when the owner
/// may read it (`ssm:GetParameters` / `secretsmanager:GetSecretValue` on
/// its ARN; administrators may read all), the decision audited. A missing
/// value and a denied one get the same answer, so a buildspec cannot learn
/// which names exist.
pub async fn value_for(
    pool: &SqlitePool,
    master: &MasterKey,
    owner: &User,
    kind: &str,
    name: &str,
    var: &str,
) -> std::result::Result<String, String> {
    let name = canonical_name(kind, name);
    let (action, what) = match kind {
        "parameter" => ("ssm:GetParameters", "parameter"),
        _ => ("secretsmanager:GetSecretValue", "secret"),
    };
    let unavailable = || {
        format!(
            "{what} {name} does not exist or {} may not read it ({action}) (for {var})",
            owner.name
        )
    };
    let arn = crate::identity::policy::stored_value_arn(kind, &name);
    let decision = crate::identity::iam::authorize(
        pool,
        owner,
        action,
        &crate::identity::iam::Target::stored_value(&arn),
        None,
    )
    .await
    .map_err(|e| e.public_message())?;
    if !decision.allowed {
        return Err(unavailable());
    }
    get_value(pool, master, kind, &name)
        .await
        .map_err(|e| e.public_message())?
        .ok_or_else(unavailable)
}

/// Master key rotation: every stored parameter and secret re-sealed.
pub async fn reseal(
    conn: &mut sqlx::SqliteConnection,
    old: &nubo_git::crypto::SecretKey,
    new: &nubo_git::crypto::SecretKey,
) -> Result<()> {
    let values: Vec<(String, String, String)> =
        sqlx::query_as("SELECT kind, name, value_sealed FROM stored_values")
            .fetch_all(&mut *conn)
            .await?;
    for (kind, name, sealed) in &values {
        let context = value_context(kind, name);
        let what = format!("{kind} {name}");
        sqlx::query("UPDATE stored_values SET value_sealed = $1 WHERE kind = $2 AND name = $3")
            .bind(crate::keys::reseal_value(
                old, new, &context, sealed, &what,
            )?)
            .bind(kind)
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub fn validate_value_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("invalid {kind} name {name:?}: letters, digits, '/', '_', '.', '-'"),
        ))
    }
}

pub async fn put_value(
    pool: &SqlitePool,
    master: &MasterKey,
    kind: &str,
    name: &str,
    value: &str,
    by: &str,
) -> Result<()> {
    let name = &canonical_name(kind, name);
    validate_value_name(kind, name)?;
    if value.len() > 64 * 1024 {
        return Err(Error::PayloadTooLarge(format!(
            "a {kind} value may be at most 64 KiB"
        )));
    }
    let (mut tx, key) = master.sealing(pool).await?;
    let sealed = nubo_git::crypto::seal(&key, &value_context(kind, name), value.as_bytes());
    sqlx::query(
        "INSERT INTO stored_values (kind, name, value_sealed, created_by, updated_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (kind, name) DO UPDATE SET value_sealed = excluded.value_sealed, updated_at = excluded.updated_at",
    )
    .bind(kind)
    .bind(name)
    .bind(sealed)
    .bind(by)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn get_value(
    pool: &SqlitePool,
    master: &MasterKey,
    kind: &str,
    name: &str,
) -> Result<Option<String>> {
    let name = &canonical_name(kind, name);
    let sealed: Option<String> =
        sqlx::query_scalar("SELECT value_sealed FROM stored_values WHERE kind = $1 AND name = $2")
            .bind(kind)
            .bind(name)
            .fetch_optional(pool)
            .await?;
    match sealed {
        None => Ok(None),
        Some(s) => {
            let plain = master.open(&value_context(kind, name), &s)?;
            Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoredValue {
    pub name: String,
    pub created_by: Option<String>,
    pub updated_at: String,
}

pub async fn list_values(pool: &SqlitePool, kind: &str) -> Result<Vec<StoredValue>> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT name, created_by, updated_at FROM stored_values WHERE kind = $1 ORDER BY name",
    )
    .bind(kind)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, created_by, at)| StoredValue {
            name,
            created_by,
            updated_at: rfc3339(at),
        })
        .collect())
}

pub async fn delete_value(pool: &SqlitePool, kind: &str, name: &str) -> Result<()> {
    let name = &canonical_name(kind, name);
    let done = sqlx::query("DELETE FROM stored_values WHERE kind = $1 AND name = $2")
        .bind(kind)
        .bind(name)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no {kind} named {name:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_checked() {
        assert!(super::validate_value_name("parameter", "/prod/db/password").is_ok());
        assert!(super::validate_value_name("parameter", "../x").is_err());
    }
}
