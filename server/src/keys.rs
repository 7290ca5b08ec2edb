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

/// A master key rotation in progress: one transaction, holding the
/// keyring's lock, in which every domain that seals with the master key
/// re-seals its values from `old` to `new` (each exports a `reseal`; `nubo
/// key rotate` calls them all). [`Rotation::finish`] commits and moves the
/// new key file into place; dropping it unfinished changes nothing.
pub struct Rotation {
    pub tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    pub old: SecretKey,
    pub new: SecretKey,
    path: PathBuf,
    pending: PathBuf,
}

impl Rotation {
    pub async fn begin(settings: &Settings, pool: &SqlitePool) -> Result<Rotation> {
        let path = key_path(settings);
        let mut tx = pool.begin().await?;
        // Writers that seal take this lock first too (MasterKey::sealing), and
        // so does a second rotation: the key files are only touched under it.
        lock_keyring(&mut tx).await?;
        let old = load_or_create(settings, pool).await?;
        let new = SecretKey::generate();
        let pending = pending_path(&path);
        let _ = std::fs::remove_file(&pending);
        write_key(&pending, &new)?;
        Ok(Rotation {
            tx,
            old,
            new,
            path,
            pending,
        })
    }

    /// Records the new key's check value, commits, and moves the new key
    /// file into place.
    pub async fn finish(mut self) -> Result<()> {
        sqlx::query("UPDATE keyring SET check_value = $1, updated_at = $2 WHERE id = 'master'")
            .bind(crypto::seal(&self.new, CHECK_CONTEXT, CHECK_PLAINTEXT))
            .bind(now_ms())
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        if let Err(e) = std::fs::rename(&self.pending, &self.path) {
            // A server that started just now may have finished the move.
            if !read_key(&self.path).is_ok_and(|k| k.as_bytes() == self.new.as_bytes()) {
                return Err(Error::Internal(format!(
                    "cannot move the new key into place: {e}"
                )));
            }
        }
        Ok(())
    }
}

/// One sealed value opened with the old key and sealed with the new
/// (`what` names it in the error).
pub fn reseal_value(
    old: &SecretKey,
    new: &SecretKey,
    context: &[u8],
    sealed: &str,
    what: &str,
) -> Result<String> {
    let plain = crypto::open(old, context, sealed)
        .map_err(|e| Error::Internal(format!("cannot open {what}: {e}")))?;
    Ok(crypto::seal(new, context, &plain))
}

/// Takes the database's write lock for the master key: a transaction that
/// starts with this cannot interleave with a rotation (which starts with it
/// too), so a value sealed in it and the rotation see the same key.
async fn lock_keyring(tx: &mut sqlx::SqliteConnection) -> Result<()> {
    sqlx::query("UPDATE keyring SET updated_at = updated_at WHERE id = 'master'")
        .execute(tx)
        .await?;
    Ok(())
}

/// The process's master key, kept current with the database: `nubo key
/// rotate` may run beside a server, which must then seal and wrap with the
/// new key, never the one rotation discarded.
pub struct MasterKey {
    settings: Settings,
    /// The key and the check value it is known to open ("" when unknown).
    key: RwLock<(SecretKey, String)>,
}

impl MasterKey {
    pub fn new(settings: Settings, key: SecretKey) -> MasterKey {
        MasterKey {
            settings,
            key: RwLock::new((key, String::new())),
        }
    }

    fn cached(&self) -> SecretKey {
        self.key.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The key that opens the database's check value now: the one held, or
    /// (after a rotation beside this process) the key file, or the new key
    /// of a rotation that has committed but not yet moved its file.
    async fn current(&self, conn: &mut sqlx::SqliteConnection) -> Result<SecretKey> {
        let Some(check) =
            sqlx::query_scalar::<_, String>("SELECT check_value FROM keyring WHERE id = 'master'")
                .fetch_optional(conn)
                .await?
        else {
            return Ok(self.cached());
        };
        {
            let held = self.key.read().unwrap_or_else(|e| e.into_inner());
            if held.1 == check {
                return Ok(held.0.clone());
            }
        }
        let path = key_path(&self.settings);
        let held = self.cached();
        for candidate in [Ok(held), read_key(&path), read_key(&pending_path(&path))]
            .into_iter()
            .flatten()
        {
            if opens(&candidate, &check) {
                *self.key.write().unwrap_or_else(|e| e.into_inner()) = (candidate.clone(), check);
                return Ok(candidate);
            }
        }
        Err(Error::Internal(format!(
            "the master key was changed beside this process and {} does not hold the new one; \
             restart the server with the right key file",
            path.display()
        )))
    }

    /// A write transaction with the current master key: seal or wrap with
    /// the key and write the result in the transaction, then commit. A
    /// rotation waits for it (and it for a rotation).
    pub async fn sealing<'a>(
        &self,
        pool: &'a SqlitePool,
    ) -> Result<(sqlx::Transaction<'a, sqlx::Sqlite>, SecretKey)> {
        let mut tx = pool.begin().await?;
        lock_keyring(&mut tx).await?;
        let key = self.current(&mut tx).await?;
        Ok((tx, key))
    }

    /// Opens what was sealed under the master key, reloading the key if a
    /// rotation changed it.
    pub fn open(&self, context: &[u8], sealed: &str) -> Result<Vec<u8>> {
        if let Ok(p) = crypto::open(&self.cached(), context, sealed) {
            return Ok(p);
        }
        let path = key_path(&self.settings);
        for fresh in [read_key(&path), read_key(&pending_path(&path))]
            .into_iter()
            .flatten()
        {
            if let Ok(p) = crypto::open(&fresh, context, sealed) {
                *self.key.write().unwrap_or_else(|e| e.into_inner()) = (fresh, String::new());
                return Ok(p);
            }
        }
        Err(Error::Internal(
            "cannot open a sealed secret with the master key".into(),
        ))
    }

    pub async fn unwrap(
        &self,
        pool: &SqlitePool,
        repo_id: &str,
        wrapped: &str,
    ) -> Result<SecretKey> {
        if let Ok(k) = crypto::unwrap_data_key(&self.cached(), repo_id, wrapped) {
            return Ok(k);
        }
        let mut conn = pool.acquire().await?;
        let fresh = self.current(&mut conn).await?;
        crypto::unwrap_data_key(&fresh, repo_id, wrapped).map_err(|e| {
            Error::Internal(format!(
                "cannot unwrap the data key of repository {repo_id}: {e}"
            ))
        })
    }
}
