//! The master key (a local key file by default) and the data keys it wraps.
//!
//! The database keeps a check value sealed by the master key. A key file
//! that does not open it is refused loudly; a missing key file is never
//! replaced by a new one once data exists.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use nubo_git::crypto::{self, SecretKey};
use sqlx::SqlitePool;

use crate::config::Settings;
use crate::db::now_ms;
use crate::error::{Error, Result};

const CHECK_CONTEXT: &[u8] = b"nubo:master-key-check";
const CHECK_PLAINTEXT: &[u8] = b"nubo master key";

/// Where the master key file is.
pub fn key_path(settings: &Settings) -> PathBuf {
    settings
        .master_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("master.key"))
}

fn pending_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".new");
    PathBuf::from(p)
}

fn read_key(path: &Path) -> Result<SecretKey> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Internal(format!(
            "cannot read the master key file {}: {e}",
            path.display()
        ))
    })?;
    SecretKey::from_bytes(&bytes).map_err(|_| {
        Error::Internal(format!(
            "the master key file {} must hold exactly 32 bytes",
            path.display()
        ))
    })
}

fn write_key(path: &Path, key: &SecretKey) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    let io = |e: std::io::Error| {
        Error::Internal(format!(
            "cannot write the master key file {}: {e}",
            path.display()
        ))
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(io)?;
    f.write_all(key.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

async fn stored_check(pool: &SqlitePool) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT check_value FROM keyring WHERE id = 'master'")
            .fetch_optional(pool)
            .await?,
    )
}

fn opens(key: &SecretKey, check: &str) -> bool {
    crypto::open(key, CHECK_CONTEXT, check).is_ok_and(|p| p == CHECK_PLAINTEXT)
}

/// Loads the master key, creating it only when this data dir has never had
/// one. Finishes a rotation that was interrupted before its key file moved.
pub async fn load_or_create(settings: &Settings, pool: &SqlitePool) -> Result<SecretKey> {
    let path = key_path(settings);
    let check = stored_check(pool).await?;
    match (path.exists(), check) {
        (true, Some(check)) => {
            let key = read_key(&path)?;
            if opens(&key, &check) {
                return Ok(key);
            }
            let pending = pending_path(&path);
            if pending.exists() {
                let new = read_key(&pending)?;
                if opens(&new, &check) {
                    std::fs::rename(&pending, &path)
                        .map_err(|e| Error::Internal(format!("cannot finish the key rotation: {e}")))?;
                    tracing::warn!(path = %path.display(), "finished an interrupted master key rotation");
                    return Ok(new);
                }
            }
            Err(Error::Internal(format!(
                "the master key in {} is not the key this data dir was encrypted with; \
                 start with the right --master-key-file (nothing was changed)",
                path.display()
            )))
        }
        (true, None) => {
            let key = read_key(&path)?;
            save_check(pool, &key).await?;
            Ok(key)
        }
        (false, None) => {
            let key = SecretKey::generate();
            write_key(&path, &key)?;
            save_check(pool, &key).await?;
            tracing::info!(path = %path.display(), "created the master key");
            Ok(key)
        }
        (false, Some(_)) => Err(Error::Internal(format!(
            "the master key file {} is missing, but this data dir holds data encrypted under a master key; \
             restore the file or pass --master-key-file (no new key was created)",
            path.display()
        ))),
    }
}

async fn save_check(pool: &SqlitePool, key: &SecretKey) -> Result<()> {
    sqlx::query("INSERT INTO keyring (id, check_value, updated_at) VALUES ('master', $1, $2)")
        .bind(crypto::seal(key, CHECK_CONTEXT, CHECK_PLAINTEXT))
        .bind(now_ms())
        .execute(pool)
        .await?;
    Ok(())
}

/// Re-wraps every data key under a new master key in one transaction, then
/// moves the new key file into place. Returns how many keys were re-wrapped.
pub async fn rotate(settings: &Settings, pool: &SqlitePool) -> Result<usize> {
    let path = key_path(settings);
    let old = load_or_create(settings, pool).await?;
    let new = SecretKey::generate();
    let pending = pending_path(&path);
    let _ = std::fs::remove_file(&pending);
    write_key(&pending, &new)?;
    let mut tx = pool.begin().await?;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, wrapped_key FROM repos")
        .fetch_all(&mut *tx)
        .await?;
    for (id, wrapped) in &rows {
        let data = crypto::unwrap_data_key(&old, id, wrapped).map_err(|e| {
            Error::Internal(format!(
                "cannot unwrap the data key of repository {id}: {e}"
            ))
        })?;
        sqlx::query("UPDATE repos SET wrapped_key = $1 WHERE id = $2")
            .bind(crypto::wrap_data_key(&new, id, &data))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    // Everything else sealed by the master key: webhook secrets, stored
    // parameters and secrets.
    let hooks: Vec<(String, String)> = sqlx::query_as("SELECT id, sealed_secret FROM webhooks")
        .fetch_all(&mut *tx)
        .await?;
    for (id, sealed) in &hooks {
        let plain = crypto::open(&old, crate::webhooks::SECRET_CONTEXT, sealed)
            .map_err(|e| Error::Internal(format!("cannot open webhook {id}'s secret: {e}")))?;
        sqlx::query("UPDATE webhooks SET sealed_secret = $1 WHERE id = $2")
            .bind(crypto::seal(&new, crate::webhooks::SECRET_CONTEXT, &plain))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let values: Vec<(String, String, String)> =
        sqlx::query_as("SELECT kind, name, value_sealed FROM stored_values")
            .fetch_all(&mut *tx)
            .await?;
    for (kind, name, sealed) in &values {
        let context = crate::builds::value_context(kind, name);
        let plain = crypto::open(&old, &context, sealed)
            .map_err(|e| Error::Internal(format!("cannot open {kind} {name}: {e}")))?;
        sqlx::query("UPDATE stored_values SET value_sealed = $1 WHERE kind = $2 AND name = $3")
            .bind(crypto::seal(&new, &context, &plain))
            .bind(kind)
            .bind(name)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("UPDATE keyring SET check_value = $1, updated_at = $2 WHERE id = 'master'")
        .bind(crypto::seal(&new, CHECK_CONTEXT, CHECK_PLAINTEXT))
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    std::fs::rename(&pending, &path)
        .map_err(|e| Error::Internal(format!("cannot move the new key into place: {e}")))?;
    Ok(rows.len())
}

/// The server's master key, reloaded from its file when a data key no
/// longer opens (after `nubo key rotate` ran beside the server).
pub struct MasterKey {
    settings: Settings,
    key: RwLock<SecretKey>,
}

impl MasterKey {
    pub fn new(settings: Settings, key: SecretKey) -> MasterKey {
        MasterKey {
            settings,
            key: RwLock::new(key),
        }
    }

    /// Seals a small secret (e.g. a webhook secret) under the master key.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> String {
        let key = self.key.read().unwrap_or_else(|e| e.into_inner());
        crypto::seal(&key, context, plaintext)
    }

    /// Opens what [`MasterKey::seal`] sealed, reloading the key file once
    /// if the key changed.
    pub fn open(&self, context: &[u8], sealed: &str) -> Result<Vec<u8>> {
        {
            let key = self.key.read().unwrap_or_else(|e| e.into_inner());
            if let Ok(p) = crypto::open(&key, context, sealed) {
                return Ok(p);
            }
        }
        let fresh = read_key(&key_path(&self.settings))?;
        let p = crypto::open(&fresh, context, sealed)
            .map_err(|e| Error::Internal(format!("cannot open a sealed secret: {e}")))?;
        *self.key.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(p)
    }

    pub fn wrap(&self, repo_id: &str, data_key: &SecretKey) -> String {
        let key = self.key.read().unwrap_or_else(|e| e.into_inner());
        crypto::wrap_data_key(&key, repo_id, data_key)
    }

    pub async fn unwrap(
        &self,
        pool: &SqlitePool,
        repo_id: &str,
        wrapped: &str,
    ) -> Result<SecretKey> {
        {
            let key = self.key.read().unwrap_or_else(|e| e.into_inner());
            if let Ok(k) = crypto::unwrap_data_key(&key, repo_id, wrapped) {
                return Ok(k);
            }
        }
        let fresh = load_or_create(&self.settings, pool).await?;
        let k = crypto::unwrap_data_key(&fresh, repo_id, wrapped).map_err(|e| {
            Error::Internal(format!(
                "cannot unwrap the data key of repository {repo_id}: {e}"
            ))
        })?;
        *self.key.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(k)
    }
}
