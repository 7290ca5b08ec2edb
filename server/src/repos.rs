//! Repositories: metadata in the database, a bare git repository on disk.
//!
//! Access until IAM policies arrive: a repository's creator has full access
//! to it, administrators to all; nobody else sees it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::accounts::User;
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};

/// A repository as users see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Repo {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub description: String,
    /// The user who created it.
    pub owner: String,
    #[serde(skip)]
    pub owner_id: String,
    /// RFC 3339.
    pub created_at: String,
}

type Row = (String, String, String, String, String, i64);
const SELECT: &str = "SELECT r.id, r.name, r.description, u.name, r.created_by, r.created_at
                      FROM repos r JOIN users u ON u.id = r.created_by";

fn from_row(r: Row) -> Repo {
    Repo {
        id: r.0,
        name: r.1,
        description: r.2,
        owner: r.3,
        owner_id: r.4,
        created_at: rfc3339(r.5),
    }
}

/// Where a repository's bare git directory lives.
pub fn git_dir(data_dir: &Path, repo: &Repo) -> PathBuf {
    data_dir.join("repos").join(format!("{}.git", repo.id))
}

impl Repo {
    /// Whether `user` may read and write this repository.
    pub fn accessible_by(&self, user: &User) -> bool {
        user.admin || self.owner_id == user.id
    }

    /// The HTTP clone URL on a server reachable at `base_url`.
    pub fn clone_url(&self, base_url: &str) -> String {
        format!("{base_url}/v1/repos/{}", self.name)
    }
}

fn validate_description(description: &str) -> Result<String> {
    let d = description.trim();
    if d.chars().count() > 1000 || d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::Unprocessable(
            "repository description must be at most 1000 printable characters".into(),
        ));
    }
    Ok(d.to_string())
}

/// Creates the bare repository, then its record: a record never points at a
/// missing repository, whatever moment the process dies.
pub async fn create(
    pool: &SqlitePool,
    data_dir: &Path,
    name: &str,
    description: &str,
    creator: &User,
) -> Result<Repo> {
    nubo_git::repo_name::validate(name).map_err(|e| Error::Unprocessable(e.to_string()))?;
    let description = validate_description(description)?;
    if find(pool, name).await?.is_some() {
        return Err(Error::Conflict(format!(
            "a repository named {name:?} already exists"
        )));
    }
    let now = now_ms();
    let repo = Repo {
        id: new_id(),
        name: name.to_string(),
        description,
        owner: creator.name.clone(),
        owner_id: creator.id.clone(),
        created_at: rfc3339(now),
    };
    let dir = git_dir(data_dir, &repo);
    std::fs::create_dir_all(dir.parent().unwrap_or(data_dir))
        .map_err(|e| Error::Internal(format!("cannot create the repository store: {e}")))?;
    nubo_git::smart_http::init_bare(&dir)
        .await
        .map_err(|e| Error::Internal(format!("cannot create repository: {e}")))?;
    let inserted = sqlx::query(
        "INSERT INTO repos (id, name, description, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&repo.id)
    .bind(&repo.name)
    .bind(&repo.description)
    .bind(&creator.id)
    .bind(now)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(repo),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => Err(Error::Conflict(
                    format!("a repository named {name:?} already exists"),
                )),
                other => Err(other.into()),
            }
        }
    }
}

pub async fn find(pool: &SqlitePool, name: &str) -> Result<Option<Repo>> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE lower(r.name) = lower($1)"))
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(from_row))
}

/// The repository if `user` may access it; otherwise 404, so that names of
/// other people's repositories do not leak.
pub async fn require_accessible(pool: &SqlitePool, name: &str, user: &User) -> Result<Repo> {
    match find(pool, name).await? {
        Some(repo) if repo.accessible_by(user) => Ok(repo),
        _ => Err(Error::NotFound(format!(
            "no repository named {name:?} that you can access"
        ))),
    }
}

/// The repositories `user` can access, by name.
pub async fn list_for(pool: &SqlitePool, user: &User) -> Result<Vec<Repo>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "{SELECT} WHERE $1 OR r.created_by = $2 ORDER BY lower(r.name)"
    ))
    .bind(user.admin)
    .bind(&user.id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Every repository, for the CLI.
pub async fn list_all(pool: &SqlitePool) -> Result<Vec<Repo>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY lower(r.name)"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Deletes the record, then the files.
pub async fn delete(pool: &SqlitePool, data_dir: &Path, repo: &Repo) -> Result<()> {
    sqlx::query("DELETE FROM repos WHERE id = $1")
        .bind(&repo.id)
        .execute(pool)
        .await?;
    let dir = git_dir(data_dir, repo);
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
        tracing::warn!(repo = %repo.name, error = %e, "repository files were not removed");
    }
    Ok(())
}
