//! `Ctx`: what every domain's core works with — the database, the
//! settings, the master key, the directory of plaintext working copies and
//! the event bus. `nubo serve` makes one at start; the CLI opens one with
//! [`Ctx::open`], so both run the same domain code.

use std::path::PathBuf;
use std::sync::Arc;

use sqlx::SqlitePool;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::events::EventBus;
use crate::keys::MasterKey;

#[derive(Clone)]
pub struct Ctx {
    pub pool: SqlitePool,
    pub settings: Arc<Settings>,
    pub master: Arc<MasterKey>,
    /// Where plaintext working copies of repositories are kept.
    pub cache_dir: PathBuf,
    pub events: EventBus,
    /// The CLI's temporary cache dir, removed when the last copy goes.
    _tmp: Option<Arc<tempfile::TempDir>>,
}

impl Ctx {
    pub fn new(pool: SqlitePool, settings: Settings, master: MasterKey) -> Ctx {
        let cache_dir = settings.effective_cache_dir();
        Ctx {
            pool,
            settings: Arc::new(settings),
            master: Arc::new(master),
            cache_dir,
            events: EventBus::default(),
            _tmp: None,
        }
    }

    /// For the CLI: the database (migrated), the master key, and working
    /// copies in a temporary directory of its own (never the server's).
    pub async fn open(settings: &Settings) -> Result<Ctx> {
        let pool = crate::db::open(&settings.data_dir).await?;
        let key = crate::keys::load_or_create(settings, &pool).await?;
        let tmp = tempfile::tempdir()
            .map_err(|e| Error::Internal(format!("cannot make a temporary directory: {e}")))?;
        let mut ctx = Ctx::new(
            pool,
            settings.clone(),
            MasterKey::new(settings.clone(), key),
        );
        ctx.cache_dir = tmp.path().to_path_buf();
        ctx._tmp = Some(Arc::new(tmp));
        Ok(ctx)
    }
}
