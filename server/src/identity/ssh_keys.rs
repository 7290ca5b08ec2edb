//! Users' SSH public keys: ed25519, ECDSA, and RSA of 2048 bits or more.
//! Keys are identified by their SHA-256 fingerprint, unique across users.

use russh::keys::{HashAlg, PublicKey};
use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};

/// A registered key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SshKey {
    pub id: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub algorithm: String,
    pub comment: String,
    /// RFC 3339.
    pub created_at: String,
}

/// Parses an OpenSSH public key line and checks its type and size.
pub fn parse(text: &str) -> Result<PublicKey> {
    let line = text.trim();
    if line.lines().count() != 1 {
        return Err(Error::Unprocessable(
            "give exactly one public key line, as in id_ed25519.pub".into(),
        ));
    }
    let key = PublicKey::from_openssh(line).map_err(|_| {
        Error::Unprocessable(
            "not an OpenSSH public key (expected e.g. `ssh-ed25519 AAAA… comment`)".into(),
        )
    })?;
    let data = key.key_data();
    if data.ed25519().is_some() || data.ecdsa().is_some() {
        return Ok(key);
    }
    if let Some(rsa) = data.rsa() {
        let bits = rsa.key_size();
        if bits >= 2048 {
            return Ok(key);
        }
        return Err(Error::Unprocessable(format!(
            "RSA keys must have at least 2048 bits; this one has {bits}"
        )));
    }
    Err(Error::Unprocessable(format!(
        "key type {} is not accepted: use ed25519, ECDSA or RSA (2048 bits or more)",
        key.algorithm()
    )))
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

pub async fn add(pool: &SqlitePool, user: &User, text: &str) -> Result<SshKey> {
    let key = parse(text)?;
    let fp = fingerprint(&key);
    let comment: String = key
        .comment()
        .to_string()
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let openssh = key
        .to_openssh()
        .map_err(|e| Error::Internal(format!("cannot encode the key: {e}")))?;
    let id = new_id();
    let now = now_ms();
    let inserted = sqlx::query(
        "INSERT INTO ssh_keys (id, user_id, fingerprint, algorithm, public_key, comment, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&user.id)
    .bind(&fp)
    .bind(key.algorithm().to_string())
    .bind(&openssh)
    .bind(&comment)
    .bind(now)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(SshKey {
            id,
            fingerprint: fp,
            algorithm: key.algorithm().to_string(),
            comment,
            created_at: rfc3339(now),
        }),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(Error::Conflict(format!(
            "the key {fp} is already registered"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(pool: &SqlitePool, user_id: &str) -> Result<Vec<SshKey>> {
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT id, fingerprint, algorithm, comment, created_at FROM ssh_keys WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SshKey {
            id: r.0,
            fingerprint: r.1,
            algorithm: r.2,
            comment: r.3,
            created_at: rfc3339(r.4),
        })
        .collect())
}

pub async fn delete(pool: &SqlitePool, user_id: &str, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no SSH key with id {id:?}")));
    }
    Ok(())
}

/// The user a verified key belongs to.
pub async fn owner(pool: &SqlitePool, key: &PublicKey) -> Result<Option<User>> {
    let user_id: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM ssh_keys WHERE fingerprint = $1")
            .bind(fingerprint(key))
            .fetch_optional(pool)
            .await?;
    match user_id {
        Some(id) => accounts::find_by_id(pool, &id).await,
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_are_checked() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
        let key = parse(ed).unwrap();
        assert!(fingerprint(&key).starts_with("SHA256:"));
        assert!(parse("ssh-ed25519 garbage").is_err());
        assert!(parse("").is_err());
        assert!(parse(&format!("{ed}\n{ed}")).is_err());
    }
}
