//! HTTPS git credentials, as CodeCommit's IAM page generates them: a
//! server-chosen user name and password, the password shown once and stored
//! hashed, revocable. Temporary credentials (the STS idea) are limited to
//! chosen repositories and read or read-write access, and expire within 12 h.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};

/// Longest life of a temporary credential.
pub const MAX_TTL_SECONDS: u64 = 12 * 3600;

/// A credential's metadata (never the password).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GitCredential {
    pub id: String,
    pub username: String,
    pub temporary: bool,
    /// Repositories a temporary credential is limited to (null: all the user's).
    pub repos: Option<Vec<String>>,
    pub can_write: bool,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, for temporary credentials.
    pub expires_at: Option<String>,
}

/// A newly made credential: the password appears only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewGitCredential {
    pub username: String,
    pub password: String,
    #[serde(flatten)]
    pub info: GitCredential,
}

/// What a git request authenticated with a credential may do.
#[derive(Debug, Clone)]
pub struct Scope {
    pub repos: Option<Vec<String>>,
    pub can_write: bool,
}

impl Scope {
    pub fn allows(&self, repo: &str, write: bool) -> Result<(), String> {
        if write && !self.can_write {
            return Err("this credential may only read".into());
        }
        if let Some(repos) = &self.repos {
            if !repos.iter().any(|r| r.eq_ignore_ascii_case(repo)) {
                return Err(format!(
                    "this credential is not valid for repository {repo:?}"
                ));
            }
        }
        Ok(())
    }
}

fn hash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Makes a credential for `user`. `temporary` carries the scope and life.
pub async fn create(
    pool: &SqlitePool,
    user: &User,
    temporary: Option<(Option<Vec<String>>, bool, u64)>,
) -> Result<NewGitCredential> {
    let id = new_id();
    let username = format!("{}-at-{}", user.name, random_hex(5));
    let password = random_hex(24);
    let now = now_ms();
    let (is_temp, repos, can_write, expires_at) = match temporary {
        None => (false, None, true, None),
        Some((repos, can_write, ttl)) => {
            if ttl == 0 || ttl > MAX_TTL_SECONDS {
                return Err(Error::Unprocessable(format!(
                    "ttl_seconds must be between 1 and {MAX_TTL_SECONDS} (12 hours)"
                )));
            }
            if let Some(list) = &repos {
                if list.is_empty() {
                    return Err(Error::Unprocessable(
                        "give at least one repository, or none for all".into(),
                    ));
                }
                for r in list {
                    nubo_git::repo_name::validate(r)
                        .map_err(|e| Error::Unprocessable(e.to_string()))?;
                }
            }
            (true, repos, can_write, Some(now + ttl as i64 * 1000))
        }
    };
    let repos_json = repos
        .as_ref()
        .map(|r| serde_json::to_string(r).unwrap_or_default());
    sqlx::query(
        "INSERT INTO git_credentials (id, user_id, username, password_hash, temporary, repos, can_write, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(&user.id)
    .bind(&username)
    .bind(hash(&password))
    .bind(is_temp)
    .bind(&repos_json)
    .bind(can_write)
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(NewGitCredential {
        username: username.clone(),
        password,
        info: GitCredential {
            id,
            username,
            temporary: is_temp,
            repos,
            can_write,
            created_at: rfc3339(now),
            expires_at: expires_at.map(rfc3339),
        },
    })
}

type Row = (String, String, bool, Option<String>, bool, i64, Option<i64>);

fn from_row(r: Row) -> GitCredential {
    GitCredential {
        id: r.0,
        username: r.1,
        temporary: r.2,
        repos: r.3.and_then(|j| serde_json::from_str(&j).ok()),
        can_write: r.4,
        created_at: rfc3339(r.5),
        expires_at: r.6.map(rfc3339),
    }
}

/// The user's credentials that still work.
pub async fn list(pool: &SqlitePool, user_id: &str) -> Result<Vec<GitCredential>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, username, temporary, repos, can_write, created_at, expires_at FROM git_credentials
         WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
         ORDER BY created_at DESC, id",
    )
    .bind(user_id)
    .bind(now_ms())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn revoke(pool: &SqlitePool, user_id: &str, id: &str) -> Result<()> {
    let done = sqlx::query("UPDATE git_credentials SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!(
            "no active git credential with id {id:?}"
        )));
    }
    Ok(())
}

/// The user and scope of a git credential, if it is valid now.
pub async fn authenticate(
    pool: &SqlitePool,
    username: &str,
    password: &str,
) -> Result<Option<(User, Scope)>> {
    let row: Option<(String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT user_id, password_hash, repos, can_write FROM git_credentials
         WHERE username = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(username)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    let Some((user_id, stored, repos, can_write)) = row else {
        return Ok(None);
    };
    use subtle::ConstantTimeEq;
    if !bool::from(stored.as_bytes().ct_eq(hash(password).as_bytes())) {
        return Ok(None);
    }
    let scope = Scope {
        repos: repos.and_then(|j| serde_json::from_str(&j).ok()),
        can_write,
    };
    Ok(accounts::find_by_id(pool, &user_id)
        .await?
        .map(|u| (u, scope)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_limit_repositories_and_writes() {
        let s = Scope {
            repos: Some(vec!["app".into()]),
            can_write: false,
        };
        assert!(s.allows("app", false).is_ok());
        assert!(s.allows("APP", false).is_ok());
        assert!(s.allows("app", true).is_err());
        assert!(s.allows("other", false).is_err());
        let all = Scope {
            repos: None,
            can_write: true,
        };
        assert!(all.allows("anything", true).is_ok());
    }
}
