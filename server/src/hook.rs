//! `nubo hook pre-receive`: git runs it inside a working copy once a push's
//! pack sits in quarantine and before any ref moves. It stores the pack and
//! the new refs snapshot encrypted and durably, then advances the
//! repository's refs version with a compare-and-swap. Only then does it
//! exit 0 and git accept the push: an acknowledged push is always stored.
//! The ref updates are recorded in the same transaction.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use nubo_git::store::{self, RefsSnapshot};

use crate::config::Settings;
use crate::{db, keys, repos};

pub async fn pre_receive(settings: &Settings) -> anyhow::Result<()> {
    let repo_id = std::env::var("NUBO_REPO_ID")
        .context("NUBO_REPO_ID is not set: this command is run by git")?;
    let git_dir = PathBuf::from(std::env::var("GIT_DIR").unwrap_or_else(|_| ".".into()));
    let git_dir = std::path::absolute(&git_dir)?;
    let mut updates = String::new();
    std::io::stdin().read_to_string(&mut updates)?;

    let pool = db::open(&settings.data_dir).await?;
    let master = keys::load_or_create(settings, &pool).await?;
    let (wrapped, version): (String, i64) =
        sqlx::query_as("SELECT wrapped_key, refs_version FROM repos WHERE id = $1")
            .bind(&repo_id)
            .fetch_optional(&pool)
            .await?
            .context("this repository was deleted")?;
    // Ref-level rules first: a denied ref refuses the whole push, and git
    // shows these lines to the pusher as `remote:` lines.
    let pusher_name = std::env::var("NUBO_PUSHER").unwrap_or_default();
    let pusher = crate::accounts::find_by_name(&pool, &pusher_name)
        .await?
        .context("the pushing user no longer exists")?;
    let repo_row: (String, String) =
        sqlx::query_as("SELECT name, created_by FROM repos WHERE id = $1")
            .bind(&repo_id)
            .fetch_one(&pool)
            .await?;
    let target = crate::iam::Target::repo(&repo_row.0, Some(&repo_row.1));
    let mut denied = Vec::new();
    for line in updates.lines().filter(|l| !l.trim().is_empty()) {
        let Some(reference) = line.split_whitespace().nth(2) else {
            continue;
        };
        let d = crate::iam::authorize(
            &pool,
            &pusher,
            "codecommit:GitPush",
            &target,
            Some(reference),
        )
        .await?;
        if !d.allowed {
            denied.push(crate::iam::denial_message(
                &pusher,
                "codecommit:GitPush",
                &repo_row.0,
                Some(reference),
                &d,
            ));
        }
    }
    if !denied.is_empty() {
        for message in &denied {
            eprintln!("Nubo: {message}");
        }
        bail!("push refused by policy; nothing was changed");
    }
    let data_key = match nubo_git::crypto::unwrap_data_key(&master, &repo_id, &wrapped) {
        Ok(k) => k,
        // `nubo key rotate` ran between reading the wrapped key and the
        // key file: read both again.
        Err(_) => {
            let master = keys::load_or_create(settings, &pool).await?;
            let wrapped: String = sqlx::query_scalar("SELECT wrapped_key FROM repos WHERE id = $1")
                .bind(&repo_id)
                .fetch_one(&pool)
                .await?;
            nubo_git::crypto::unwrap_data_key(&master, &repo_id, &wrapped)?
        }
    };
    let durable = repos::durable_store(&settings.data_dir);

    let mut snapshot = RefsSnapshot::read_from(&git_dir)?;
    snapshot.apply_updates(&updates)?;
    let next = version + 1;
    let quarantine = std::env::var_os("GIT_QUARANTINE_PATH").map(|q| PathBuf::from(q).join("pack"));
    let (store2, key2, id2) = (durable.clone(), data_key.clone(), repo_id.clone());
    let packs = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let packs = match quarantine {
            Some(dir) => store::store_quarantined_packs(&store2, &id2, &key2, &dir)?,
            None => Vec::new(),
        };
        store2.put(
            &store::refs_key(&id2, next),
            &key2,
            snapshot.serialize().as_bytes(),
        )?;
        Ok(packs)
    })
    .await??;

    let mut tx = pool.begin().await?;
    let moved =
        sqlx::query("UPDATE repos SET refs_version = $1 WHERE id = $2 AND refs_version = $3")
            .bind(next)
            .bind(&repo_id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
    if moved.rows_affected() != 1 {
        bail!("another push to this repository landed first; fetch and push again");
    }
    let pusher = std::env::var("NUBO_PUSHER").unwrap_or_default();
    let now = db::now_ms();
    for line in updates.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        if let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) {
            sqlx::query(
                "INSERT INTO ref_updates (repo_id, version, ref_name, old_sha, new_sha, pusher, pushed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&repo_id)
            .bind(next)
            .bind(name)
            .bind(old)
            .bind(new)
            .bind(&pusher)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    for pack in &packs {
        sqlx::query("INSERT INTO repo_packs (repo_id, name, version) VALUES ($1, $2, $3)")
            .bind(&repo_id)
            .bind(pack)
            .bind(next)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    std::fs::write(repos::version_file(&git_dir), next.to_string())?;
    Ok(())
}
