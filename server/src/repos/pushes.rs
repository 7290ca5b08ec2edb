//! A repository's pushes: the ref updates the pre-receive hook records in
//! the transaction that accepts a push, read back for the API, the pages
//! and the event bus.

use sqlx::SqlitePool;

use crate::db::rfc3339;
use crate::error::Result;
use crate::events::{EventBus, RefUpdate};

type Row = (String, i64, String, String, String, String, i64);

fn from_row(repo: &str, r: Row) -> RefUpdate {
    RefUpdate {
        repo: repo.to_string(),
        version: r.1,
        ref_name: r.2,
        old: r.3,
        new: r.4,
        pusher: r.5,
        time: rfc3339(r.6),
    }
}

/// The ref updates of a repository, newest first.
pub async fn list(
    pool: &SqlitePool,
    repo_id: &str,
    repo_name: &str,
    limit: i64,
) -> Result<Vec<RefUpdate>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT repo_id, version, ref_name, old_sha, new_sha, pusher, pushed_at FROM ref_updates
         WHERE repo_id = $1 ORDER BY version DESC, ref_name LIMIT $2",
    )
    .bind(repo_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| from_row(repo_name, r)).collect())
}

/// The ref updates of versions after `after`, oldest first.
pub async fn since(
    pool: &SqlitePool,
    repo_id: &str,
    repo_name: &str,
    after: i64,
) -> Result<Vec<RefUpdate>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT repo_id, version, ref_name, old_sha, new_sha, pusher, pushed_at FROM ref_updates
         WHERE repo_id = $1 AND version > $2 ORDER BY version, ref_name",
    )
    .bind(repo_id)
    .bind(after)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| from_row(repo_name, r)).collect())
}

/// Publishes on `bus` what a push to the repository recorded after version
/// `after` (nothing when the push was refused).
pub async fn publish_since(
    pool: &SqlitePool,
    bus: &EventBus,
    repo_id: &str,
    repo_name: &str,
    after: i64,
) {
    match since(pool, repo_id, repo_name, after).await {
        Ok(updates) => updates.into_iter().for_each(|u| bus.publish(u)),
        Err(e) => tracing::warn!(repo = %repo_name, error = %e, "push events not published"),
    }
}
