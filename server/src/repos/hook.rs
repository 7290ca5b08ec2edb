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
    let pusher = crate::identity::accounts::find_by_name(&pool, &pusher_name)
        .await?
        .context("the pushing user no longer exists")?;
    let repo_row: (String, String) =
        sqlx::query_as("SELECT name, created_by FROM repos WHERE id = $1")
            .bind(&repo_id)
            .fetch_one(&pool)
            .await?;
    let target = crate::identity::iam::Target::repo(&repo_row.0, Some(&repo_row.1));
    let mut denied = Vec::new();
    for line in updates.lines().filter(|l| !l.trim().is_empty()) {
        let Some(reference) = line.split_whitespace().nth(2) else {
            continue;
        };
        let d = crate::identity::iam::authorize(
            &pool,
            &pusher,
            "codecommit:GitPush",
            &target,
            Some(reference),
        )
        .await?;
        if !d.allowed {
            denied.push(crate::identity::iam::denial_message(
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
    // git checks some things only after this hook: what it would refuse
    // must not be stored (it would come back after a restart).
    if let Err(why) = check_updates(&git_dir, &snapshot, &updates) {
        eprintln!("Nubo: {why}");
        bail!("push refused; nothing was changed");
    }
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
            // The webhook deliveries of this update, in the same
            // transaction: a crash after the push was accepted loses none.
            let update = crate::events::RefUpdate {
                repo: repo_row.0.clone(),
                version: next,
                ref_name: name.to_string(),
                old: old.to_string(),
                new: new.to_string(),
                pusher: pusher.clone(),
                time: db::rfc3339(now),
            };
            crate::repos::webhooks::enqueue(&mut tx, &repo_id, &update).await?;
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

fn is_zero(sha: &str) -> bool {
    sha.chars().all(|c| c == '0')
}

/// What git refuses only after the pre-receive hook, checked before the
/// push is stored: a malformed ref name, an old value that is not the ref's
/// current one, a branch that would not point to a commit, a ref whose name
/// clashes with another's as a directory (`a` and `a/b`). One refused
/// update refuses the whole push.
fn check_updates(
    git_dir: &std::path::Path,
    current: &RefsSnapshot,
    updates: &str,
) -> Result<(), String> {
    let mut after = current.refs.clone();
    let mut changed = Vec::new();
    let mut branches = Vec::new();
    for line in updates.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("malformed ref update {line:?}"));
        };
        if !name.starts_with("refs/") || !valid_ref_name(name) {
            return Err(format!("{name:?} is not a valid ref name"));
        }
        let was = current.refs.get(name).map(String::as_str);
        let expected = (!is_zero(old)).then_some(old);
        if was != expected {
            return Err(format!(
                "{name} has moved since you fetched it; fetch and push again"
            ));
        }
        if is_zero(new) {
            after.remove(name);
            continue;
        }
        if name.starts_with("refs/heads/") {
            branches.push((name.to_string(), new.to_string()));
        }
        after.insert(name.to_string(), new.to_string());
        changed.push(name.to_string());
    }
    // One git for every branch's object type (a push may carry thousands).
    if !branches.is_empty() {
        use std::io::Write;
        let mut child = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(git_dir)
            .args(["cat-file", "--batch-check=%(objecttype)"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run git: {e}"))?;
        let mut input = child.stdin.take().expect("piped");
        let list: String = branches.iter().map(|(_, sha)| format!("{sha}\n")).collect();
        let writer = std::thread::spawn(move || input.write_all(list.as_bytes()));
        let out = child
            .wait_with_output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        let _ = writer.join();
        let kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        for (i, (name, sha)) in branches.iter().enumerate() {
            let kind = kinds.get(i).map(String::as_str).unwrap_or("");
            if kind != "commit" {
                let what = if kind.is_empty() || kind.ends_with("missing") {
                    "an unknown object"
                } else {
                    kind
                };
                return Err(format!(
                    "{name} would point to {what} {sha}; a branch must point to a commit"
                ));
            }
        }
    }
    for name in &changed {
        let dir = format!("{name}/");
        let clash = after
            .keys()
            .find(|other| other.starts_with(&dir) || name.starts_with(&format!("{other}/")));
        if let Some(other) = clash {
            return Err(format!(
                "{name} cannot exist beside {other} (one would be a directory of the other)"
            ));
        }
    }
    Ok(())
}

/// git's rules for ref names (`git check-ref-format`).
fn valid_ref_name(name: &str) -> bool {
    let bad_char = |c: char| c.is_ascii_control() || " ~^:?*[\\".contains(c);
    !name.is_empty()
        && name != "@"
        && !name.contains("..")
        && !name.contains("@{")
        && !name.ends_with('/')
        && !name.ends_with('.')
        && !name.chars().any(bad_char)
        && name
            .split('/')
            .all(|c| !c.is_empty() && !c.starts_with('.') && !c.ends_with(".lock"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ref_names_follow_git() {
        for good in [
            "refs/heads/main",
            "refs/heads/feature/x-1",
            "refs/tags/v1.0",
        ] {
            assert!(super::valid_ref_name(good), "{good}");
        }
        for bad in [
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a:b",
            "refs/heads//x",
            "refs/heads/x/",
            "refs/heads/x.",
            "refs/heads/a@{1}",
            "refs/heads/\u{7f}",
        ] {
            assert!(!super::valid_ref_name(bad), "{bad}");
        }
    }
}
