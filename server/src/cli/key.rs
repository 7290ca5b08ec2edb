//! `nubo key rotate`: a new master key, and every domain that seals with it
//! re-sealing its own values, in one transaction.

use crate::config::Settings;
use crate::{db, keys};

pub async fn rotate(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::open(&settings.data_dir).await?;
    let mut rotation = keys::Rotation::begin(settings, &pool).await?;
    let (old, new) = (rotation.old.clone(), rotation.new.clone());
    let n = crate::repos::reseal(&mut rotation.tx, &old, &new).await?;
    crate::params::reseal(&mut rotation.tx, &old, &new).await?;
    crate::pipelines::webhook::reseal(&mut rotation.tx, &old, &new).await?;
    rotation.finish().await?;
    eprintln!(
        "re-wrapped {n} data key(s) under a new master key in {}; the old key no longer opens them",
        keys::key_path(settings).display()
    );
    Ok(())
}
