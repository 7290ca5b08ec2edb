//! Repositories: metadata and wrapped data keys in the database, encrypted
//! packs and refs snapshots in the durable store, and a plaintext working
//! copy in the cache dir that git serves from, rebuilt on demand.
//!
//! Access is decided by [`crate::identity::iam`].

pub mod access;
pub mod api;
pub mod browse;
pub mod cli;
pub mod git_http;
pub mod hook;
mod hookshot;
pub mod mirror;
pub mod pages;
pub mod pushes;
pub mod ssh;
pub mod webhooks;

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use nubo_git::crypto::SecretKey;
use nubo_git::store::DurableStore;

use crate::ctx::Ctx;
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};
use crate::identity::accounts::User;
use crate::identity::iam;
use crate::keys::MasterKey;

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

/// The durable store of a data dir.
pub fn durable_store(data_dir: &Path) -> DurableStore {
    DurableStore::new(data_dir.join("store"))
}

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

/// Where a repository's plaintext working copy lives in the cache dir.
pub fn cache_git_dir(cache_dir: &Path, repo: &Repo) -> PathBuf {
    cache_dir.join(format!("{}.git", repo.id))
}

impl Repo {
    /// The repository as access rules see it.
    pub fn target(&self) -> iam::Target<'_> {
        iam::Target::repo(&self.name, Some(&self.owner_id))
    }

    /// The SSH clone URL, on the host of `base_url`.
    pub fn ssh_clone_url(&self, base_url: &str, ssh_port: u16) -> String {
        let authority = base_url.split("://").nth(1).unwrap_or(base_url);
        let host = match authority.rfind(':') {
            Some(i) if !authority[i + 1..].contains(']') => &authority[..i],
            _ => authority,
        };
        format!("ssh://git@{host}:{ssh_port}/v1/repos/{}", self.name)
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

/// Creates a repository: a fresh data key, wrapped by the master key, and
/// the record. Nothing is stored until the first push.
pub async fn create(
    pool: &SqlitePool,
    master: &MasterKey,
    name: &str,
    description: &str,
    creator: &User,
) -> Result<Repo> {
    nubo_git::repo_name::validate(name).map_err(|e| Error::invalid("name", e.to_string()))?;
    let description = validate_description(description).map_err(|e| e.on_field("description"))?;
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
    let (mut tx, key) = master.sealing(pool).await?;
    let wrapped = nubo_git::crypto::wrap_data_key(&key, &repo.id, &SecretKey::generate());
    let inserted = sqlx::query(
        "INSERT INTO repos (id, name, description, created_by, created_at, wrapped_key, refs_version)
         VALUES ($1, $2, $3, $4, $5, $6, 0)",
    )
    .bind(&repo.id)
    .bind(&repo.name)
    .bind(&repo.description)
    .bind(&creator.id)
    .bind(now)
    .bind(&wrapped)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {
            tx.commit().await?;
            Ok(repo)
        }
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(Error::Conflict(format!(
            "a repository named {name:?} already exists"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// The repository's data key.
pub async fn data_key(pool: &SqlitePool, master: &MasterKey, repo: &Repo) -> Result<SecretKey> {
    let wrapped: String = sqlx::query_scalar("SELECT wrapped_key FROM repos WHERE id = $1")
        .bind(&repo.id)
        .fetch_one(pool)
        .await?;
    master.unwrap(pool, &repo.id, &wrapped).await
}

/// Prepares an empty working copy: push hooks into the durable store, one
/// pack per push, filters for partial clones.
async fn init_cache(dir: &Path) -> Result<()> {
    nubo_git::smart_http::init_bare(dir)
        .await
        .map_err(|e| Error::Internal(format!("cannot create a working copy: {e}")))?;
    let hook = dir.join("hooks").join("pre-receive");
    std::fs::create_dir_all(dir.join("hooks")).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(&hook, "#!/bin/sh\n# Stores the pushed pack and refs, encrypted, before git accepts them.\nexec \"$NUBO_EXE\" hook pre-receive\n")
        .map_err(|e| Error::Internal(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok(())
}

/// The file in a working copy that records which durable version it holds.
pub fn version_file(git_dir: &Path) -> PathBuf {
    git_dir.join("nubo-refs-version")
}

pub fn cached_version(git_dir: &Path) -> i64 {
    std::fs::read_to_string(version_file(git_dir))
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The working copy of `repo` if it exists and is current (no lock
/// needed: a restore writes the version file last).
pub async fn current_cache(
    pool: &SqlitePool,
    cache_dir: &Path,
    repo: &Repo,
) -> Result<Option<PathBuf>> {
    let dir = cache_git_dir(cache_dir, repo);
    if !dir.join("HEAD").exists() {
        return Ok(None);
    }
    let current: i64 = sqlx::query_scalar("SELECT refs_version FROM repos WHERE id = $1")
        .bind(&repo.id)
        .fetch_one(pool)
        .await?;
    Ok((cached_version(&dir) == current).then_some(dir))
}

/// Makes the working copy of `repo` current with the durable store and
/// returns its path. Callers hold the repository's lock.
pub async fn ensure_cache(
    pool: &SqlitePool,
    master: &MasterKey,
    data_dir: &Path,
    cache_dir: &Path,
    repo: &Repo,
) -> Result<PathBuf> {
    let dir = cache_git_dir(cache_dir, repo);
    if !dir.join("HEAD").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(cache_dir)
            .map_err(|e| Error::Internal(format!("cannot create the cache dir: {e}")))?;
        init_cache(&dir).await?;
    }
    let have = cached_version(&dir);
    let current: i64 = sqlx::query_scalar("SELECT refs_version FROM repos WHERE id = $1")
        .bind(&repo.id)
        .fetch_one(pool)
        .await?;
    if have == current {
        return Ok(dir);
    }
    let packs: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM repo_packs WHERE repo_id = $1 AND version > $2 ORDER BY version",
    )
    .bind(&repo.id)
    .bind(have)
    .fetch_all(pool)
    .await?;
    let key = data_key(pool, master, repo).await?;
    let store = durable_store(data_dir);
    let (repo_id, target) = (repo.id.clone(), dir.clone());
    tokio::task::spawn_blocking(move || {
        nubo_git::store::restore_into_cache(&store, &repo_id, &key, &target, &packs, current)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
    .map_err(|e| {
        Error::Internal(format!(
            "cannot restore repository {} from the durable store: {e}",
            repo.name
        ))
    })?;
    std::fs::write(version_file(&dir), current.to_string())
        .map_err(|e| Error::Internal(e.to_string()))?;
    tracing::debug!(repo = %repo.name, from = have, to = current, "working copy restored");
    Ok(dir)
}

pub async fn find(pool: &SqlitePool, name: &str) -> Result<Option<Repo>> {
    let row: Option<Row> = sqlx::query_as(&format!("{SELECT} WHERE lower(r.name) = lower($1)"))
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(from_row))
}

/// The repository, if `user` may perform `action` on it (recorded in the
/// audit log): 404 when it does not exist, 403 with the reason when denied.
pub async fn authorize(pool: &SqlitePool, name: &str, user: &User, action: &str) -> Result<Repo> {
    let repo = find(pool, name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no repository named {name:?}")))?;
    iam::require(pool, user, action, &repo.target(), None).await?;
    Ok(repo)
}

/// The repositories `user` may see (GetRepository), by name.
pub async fn list_for(pool: &SqlitePool, user: &User) -> Result<Vec<Repo>> {
    // The user's policies once, not once per repository.
    let policies = iam::policies_for(pool, user).await?;
    Ok(list_all(pool)
        .await?
        .into_iter()
        .filter(|repo| {
            iam::decide_with(
                &policies,
                user,
                "codecommit:GetRepository",
                &repo.target(),
                None,
            )
            .allowed
        })
        .collect())
}

/// Every repository, for the CLI.
/// The names of the repositories `user` can read, lower-cased (for
/// matching names written elsewhere, such as a pipeline's source).
pub async fn readable_names(pool: &SqlitePool, user: &User) -> Result<Vec<String>> {
    Ok(list_for(pool, user)
        .await?
        .into_iter()
        .map(|r| r.name.to_lowercase())
        .collect())
}

pub async fn list_all(pool: &SqlitePool) -> Result<Vec<Repo>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("{SELECT} ORDER BY lower(r.name)"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Deletes the record (and with it the wrapped data key: the ciphertext is
/// unreadable from then on), then the stored objects and the working copy.
pub async fn delete(
    pool: &SqlitePool,
    data_dir: &Path,
    cache_dir: &Path,
    repo: &Repo,
) -> Result<()> {
    // Access given on its Access tab goes with it, in the same transaction.
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM repos WHERE id = $1")
        .bind(&repo.id)
        .execute(&mut *tx)
        .await?;
    access::remove_all(&mut tx, &repo.name).await?;
    tx.commit().await?;
    if let Err(e) = durable_store(data_dir).delete_repo(&repo.id) {
        tracing::warn!(repo = %repo.name, error = %e, "stored objects were not removed");
    }
    let _ = tokio::fs::remove_dir_all(cache_git_dir(cache_dir, repo)).await;
    // From the CLI `cache_dir` is the base of the running server's
    // per-process directories: its plaintext copy goes too.
    if let Ok(entries) = std::fs::read_dir(cache_dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("run-") {
                let _ = tokio::fs::remove_dir_all(cache_git_dir(&entry.path(), repo)).await;
            }
        }
    }
    Ok(())
}

/// Creates the repository `name` for `user`, if IAM allows it
/// (`codecommit:CreateRepository`); the audit log records the outcome.
pub async fn create_as(ctx: &Ctx, name: &str, description: &str, user: &User) -> Result<Repo> {
    let target = iam::Target::repo(name, None);
    let entry = iam::require_then(&ctx.pool, user, "codecommit:CreateRepository", &target).await?;
    let created = create(&ctx.pool, &ctx.master, name, description, user).await;
    iam::record_outcome(&ctx.pool, &entry, &created).await;
    if let Ok(repo) = &created {
        tracing::info!(repo = %repo.name, by = %user.name, "repository created");
    }
    created
}

/// Deletes the repository `name` for `user`, if IAM allows it
/// (`codecommit:DeleteRepository`); answers what was deleted.
pub async fn delete_as(ctx: &Ctx, name: &str, user: &User) -> Result<Repo> {
    let repo = authorize(&ctx.pool, name, user, "codecommit:DeleteRepository").await?;
    delete(&ctx.pool, &ctx.settings.data_dir, &ctx.cache_dir, &repo).await?;
    tracing::info!(repo = %repo.name, by = %user.name, "repository deleted");
    Ok(repo)
}

/// The locks that serialise work on each repository's working copy, one
/// per repository (the server's registry; the CLI makes its own).
#[derive(Clone, Default)]
pub struct Locks(
    std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
    >,
);

impl Locks {
    /// The lock of one repository's working copy.
    pub fn of(&self, repo_id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(repo_id.to_string()).or_default().clone()
    }
}

/// The repository's working copy, current with the durable store.
///
/// Readers (`push: false`) take the repository's lock only when the copy
/// is behind, to bring it up to date: a push that stalls while holding the
/// lock blocks no fetch, browse, build or checkout. A push (`push: true`)
/// gets the lock for as long as git runs; the caller bounds that by
/// `repo_lock_max_seconds`.
pub async fn working_copy(
    ctx: &Ctx,
    locks: &Locks,
    repo: &Repo,
    push: bool,
) -> Result<(PathBuf, Option<tokio::sync::OwnedMutexGuard<()>>)> {
    if !push {
        if let Some(dir) = current_cache(&ctx.pool, &ctx.cache_dir, repo).await? {
            return Ok((dir, None));
        }
    }
    let guard = locks.of(&repo.id).lock_owned().await;
    let dir = ensure_cache(
        &ctx.pool,
        &ctx.master,
        &ctx.settings.data_dir,
        &ctx.cache_dir,
        repo,
    )
    .await?;
    Ok((dir, push.then_some(guard)))
}

/// Master key rotation: every repository's data key re-wrapped, and the
/// webhooks' secrets re-sealed, in the rotation's transaction. Answers how
/// many data keys were re-wrapped.
pub async fn reseal(
    conn: &mut sqlx::SqliteConnection,
    old: &SecretKey,
    new: &SecretKey,
) -> Result<usize> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, wrapped_key FROM repos")
        .fetch_all(&mut *conn)
        .await?;
    for (id, wrapped) in &rows {
        let data = nubo_git::crypto::unwrap_data_key(old, id, wrapped).map_err(|e| {
            Error::Internal(format!(
                "cannot unwrap the data key of repository {id}: {e}"
            ))
        })?;
        sqlx::query("UPDATE repos SET wrapped_key = $1 WHERE id = $2")
            .bind(nubo_git::crypto::wrap_data_key(new, id, &data))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    webhooks::reseal(conn, old, new).await?;
    Ok(rows.len())
}

/// What the pre-receive hook (`nubo hook pre-receive`) needs to store a
/// push: where the data and the key are, which repository, who pushes.
pub fn hook_env(
    settings: &crate::config::Settings,
    repo: &Repo,
    user: &User,
) -> Vec<(String, String)> {
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "nubo".into());
    let abs = |p: std::path::PathBuf| {
        std::path::absolute(&p)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    vec![
        ("NUBO_EXE".into(), exe),
        ("NUBO_DATA_DIR".into(), abs(settings.data_dir.clone())),
        (
            "NUBO_MASTER_KEY_FILE".into(),
            abs(crate::keys::key_path(settings)),
        ),
        ("NUBO_REPO_ID".into(), repo.id.clone()),
        ("NUBO_PUSHER".into(), user.name.clone()),
        ("NUBO_LOG_LEVEL".into(), "warn".into()),
    ]
}

pub async fn find_by_id(pool: &SqlitePool, id: &str) -> Result<Option<Repo>> {
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM repos WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    match name {
        Some(n) => find(pool, &n).await,
        None => Ok(None),
    }
}
