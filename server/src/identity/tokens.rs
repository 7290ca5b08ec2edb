//! API tokens (personal access keys). Only a SHA-256 hash of each token is
//! stored: tokens carry 192 random bits, so a fast hash is as safe as a slow
//! one and keeps every API request cheap.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};

const TOKEN_PREFIX: &str = "nubo_";
/// How many leading characters of a token are kept to recognise it.
const SHOWN_LEN: usize = 12;
/// `last_used_at` is refreshed at most this often per token.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// A token's metadata (never the secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub description: String,
    /// The first characters of the token, to recognise it.
    pub prefix: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, or null if never used.
    pub last_used_at: Option<String>,
}

/// Returns `(token, sha256-hex)` for a fresh random token.
pub fn generate() -> (String, String) {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn validate_description(description: &str) -> Result<String> {
    let d = description.trim();
    if d.is_empty() || d.chars().count() > 200 || d.chars().any(char::is_control) {
        return Err(Error::Unprocessable(
            "token description must be 1-200 printable characters".into(),
        ));
    }
    Ok(d.to_string())
}

/// Creates a token for `user_id`; the secret is returned once, here only.
pub async fn create(
    pool: &SqlitePool,
    user_id: &str,
    description: &str,
) -> Result<(TokenInfo, String)> {
    let description = validate_description(description)?;
    let (token, hash) = generate();
    let id = new_id();
    let now = now_ms();
    let prefix: String = token.chars().take(SHOWN_LEN).collect();
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, description, token_hash, prefix, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(&description)
    .bind(&hash)
    .bind(&prefix)
    .bind(now)
    .execute(pool)
    .await?;
    let info = TokenInfo {
        id,
        description,
        prefix,
        created_at: rfc3339(now),
        last_used_at: None,
    };
    Ok((info, token))
}

/// The user's tokens that are not revoked, newest first.
pub async fn list(pool: &SqlitePool, user_id: &str) -> Result<Vec<TokenInfo>> {
    let rows: Vec<(String, String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT id, description, prefix, created_at, last_used_at FROM api_tokens
         WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TokenInfo {
            id: r.0,
            description: r.1,
            prefix: r.2,
            created_at: rfc3339(r.3),
            last_used_at: r.4.map(rfc3339),
        })
        .collect())
}

/// Revokes a token. With `owner`, only that user's token can be revoked.
pub async fn revoke(pool: &SqlitePool, id: &str, owner: Option<&str>) -> Result<()> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1
         WHERE id = $2 AND revoked_at IS NULL AND ($3 IS NULL OR user_id = $3)",
    )
    .bind(now_ms())
    .bind(id)
    .bind(owner)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("no active token with id {id:?}")));
    }
    Ok(())
}

/// The user a presented token belongs to, if it is valid and not revoked.
pub async fn authenticate(pool: &SqlitePool, token: &str) -> Result<Option<User>> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let row: Option<(String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(pool)
    .await?;
    let Some((token_id, user_id, last_used)) = row else {
        return Ok(None);
    };
    let now = now_ms();
    if last_used.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_MS) {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&token_id)
            .execute(pool)
            .await?;
    }
    accounts::find_by_id(pool, &user_id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hash_deterministically() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("nubo_") && a.len() == 5 + 48);
        assert_eq!(ha, hash(&a));
        assert_ne!(ha, a, "the hash is not the token");
    }

    #[test]
    fn descriptions_are_checked() {
        assert!(validate_description("  ").is_err());
        assert!(validate_description("a\u{7}b").is_err());
        assert_eq!(validate_description(" laptop ").unwrap(), "laptop");
    }
}
