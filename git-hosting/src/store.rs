//! The durable store of repositories: only ciphertext, written atomically
//! and durably (temp file, fsync, rename, fsync of the directory), and the
//! plaintext cache copies git works on, rebuilt from it on demand.
//!
//! Layout under the store root, per repository id:
//! `repos/<id>/packs/<pack>.pack|.idx` (each push adds one pack) and
//! `repos/<id>/refs/<version>` (a full refs snapshot per push).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::crypto::{self, SecretKey};
use crate::{Error, Result};

/// A directory of encrypted objects (the local stand-in for an object store).
#[derive(Debug, Clone)]
pub struct DurableStore {
    root: PathBuf,
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl DurableStore {
    pub fn new(root: impl Into<PathBuf>) -> DurableStore {
        DurableStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        if !valid_key(key) {
            return Err(Error::InvalidName(format!("invalid store key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    /// Encrypts `input` under `data_key` and stores it at `key`; returns
    /// only once the object is on disk. The key is the associated data, so
    /// an object moved to another key does not decrypt.
    pub fn put(&self, key: &str, data_key: &SecretKey, input: impl std::io::Read) -> Result<()> {
        let path = self.path(key)?;
        let dir = path.parent().expect("keys have a parent");
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".tmp-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        {
            let file = File::create(&tmp)?;
            let mut out = BufWriter::new(file);
            crypto::encrypt_stream(data_key, key.as_bytes(), input, &mut out)?;
            let file = out.into_inner().map_err(|e| Error::Io(e.into_error()))?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        sync_dir(dir)?;
        Ok(())
    }

    /// Decrypts the object at `key` into `output`.
    pub fn get(&self, key: &str, data_key: &SecretKey, output: impl Write) -> Result<()> {
        let file = File::open(self.path(key)?)?;
        crypto::decrypt_stream(data_key, key.as_bytes(), BufReader::new(file), output)?;
        Ok(())
    }

    /// Removes everything stored for one repository.
    pub fn delete_repo(&self, repo_id: &str) -> Result<()> {
        let dir = self.path(&format!("repos/{repo_id}"))?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

pub fn pack_key(repo_id: &str, pack: &str, ext: &str) -> String {
    format!("repos/{repo_id}/packs/{pack}.{ext}")
}

pub fn refs_key(repo_id: &str, version: i64) -> String {
    format!("repos/{repo_id}/refs/{version}")
}

/// All refs of a repository at one version, plus where HEAD points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefsSnapshot {
    pub head: String,
    pub refs: BTreeMap<String, String>,
}

const ZERO: &str = "0000000000000000000000000000000000000000";

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

impl RefsSnapshot {
    pub fn serialize(&self) -> String {
        let mut out = format!("# nubo refs v1\nHEAD {}\n", self.head);
        for (name, sha) in &self.refs {
            out.push_str(&format!("{sha} {name}\n"));
        }
        out
    }

    pub fn parse(text: &str) -> Result<RefsSnapshot> {
        let bad = |l: &str| Error::Git(format!("malformed refs snapshot line {l:?}"));
        let mut lines = text.lines();
        if lines.next() != Some("# nubo refs v1") {
            return Err(Error::Git("not a refs snapshot".into()));
        }
        let mut snap = RefsSnapshot::default();
        for line in lines {
            let (a, b) = line.split_once(' ').ok_or_else(|| bad(line))?;
            if a == "HEAD" {
                snap.head = b.to_string();
            } else if is_sha(a) && b.starts_with("refs/") {
                snap.refs.insert(b.to_string(), a.to_string());
            } else {
                return Err(bad(line));
            }
        }
        Ok(snap)
    }

    /// Applies pre-receive style updates (`old new ref` lines).
    pub fn apply_updates(&mut self, updates: &str) -> Result<()> {
        for line in updates.lines().filter(|l| !l.trim().is_empty()) {
            let mut parts = line.split_whitespace();
            let (Some(_old), Some(new), Some(name), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(Error::Git(format!("malformed ref update {line:?}")));
            };
            if !is_sha(new) || !name.starts_with("refs/") {
                return Err(Error::Git(format!("malformed ref update {line:?}")));
            }
            if new.chars().all(|c| c == '0') || new == ZERO {
                self.refs.remove(name);
            } else {
                self.refs.insert(name.to_string(), new.to_string());
            }
        }
        Ok(())
    }

    /// Reads the refs of a local repository.
    pub fn read_from(git_dir: &Path) -> Result<RefsSnapshot> {
        let out = git(
            git_dir,
            &["for-each-ref", "--format=%(objectname) %(refname)"],
        )?;
        let mut snap = RefsSnapshot {
            head: git(git_dir, &["symbolic-ref", "HEAD"]).map(|h| format!("ref: {}", h.trim()))?,
            refs: BTreeMap::new(),
        };
        for line in out.lines() {
            if let Some((sha, name)) = line.split_once(' ') {
                snap.refs.insert(name.to_string(), sha.to_string());
            }
        }
        Ok(snap)
    }

    /// Makes a local repository's refs exactly this snapshot.
    pub fn write_to(&self, git_dir: &Path) -> Result<()> {
        let refs_dir = git_dir.join("refs");
        if refs_dir.exists() {
            std::fs::remove_dir_all(&refs_dir)?;
        }
        std::fs::create_dir_all(refs_dir.join("heads"))?;
        std::fs::create_dir_all(refs_dir.join("tags"))?;
        let mut packed = String::from("# pack-refs with: sorted \n");
        for (name, sha) in &self.refs {
            packed.push_str(&format!("{sha} {name}\n"));
        }
        write_atomic(&git_dir.join("packed-refs"), packed.as_bytes())?;
        let head = if self.head.is_empty() {
            "ref: refs/heads/main".to_string()
        } else {
            self.head.clone()
        };
        write_atomic(&git_dir.join("HEAD"), format!("{head}\n").as_bytes())?;
        Ok(())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("nubo-tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn git(git_dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(Error::Git(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Encrypts the packs git received into quarantine (`receive.unpackLimit=1`
/// makes every push one pack) into the durable store; returns their names.
pub fn store_quarantined_packs(
    store: &DurableStore,
    repo_id: &str,
    data_key: &SecretKey,
    pack_dir: &Path,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = match std::fs::read_dir(pack_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("pack") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| Error::Git("odd pack file name".into()))?
            .to_string();
        let idx = path.with_extension("idx");
        store.put(
            &pack_key(repo_id, &stem, "pack"),
            data_key,
            BufReader::new(File::open(&path)?),
        )?;
        store.put(
            &pack_key(repo_id, &stem, "idx"),
            data_key,
            BufReader::new(File::open(&idx)?),
        )?;
        names.push(stem);
    }
    names.sort();
    Ok(names)
}

/// Brings a plaintext cache repository up to a version of the durable store:
/// decrypts the packs it lacks, then sets its refs to the snapshot.
pub fn restore_into_cache(
    store: &DurableStore,
    repo_id: &str,
    data_key: &SecretKey,
    cache: &Path,
    packs: &[String],
    refs_version: i64,
) -> Result<()> {
    let pack_dir = cache.join("objects").join("pack");
    std::fs::create_dir_all(&pack_dir)?;
    for pack in packs {
        let target = pack_dir.join(format!("{pack}.pack"));
        if target.exists() && pack_dir.join(format!("{pack}.idx")).exists() {
            continue;
        }
        // The pack first, its index last: git ignores a pack without one.
        for ext in ["pack", "idx"] {
            let tmp = pack_dir.join(format!(".restore-{pack}.{ext}"));
            let written = (|| -> Result<()> {
                let mut out = BufWriter::new(File::create(&tmp)?);
                store.get(&pack_key(repo_id, pack, ext), data_key, &mut out)?;
                // The last buffered bytes are written here: a full disk
                // must fail the restore, not leave a truncated pack.
                let file = out.into_inner().map_err(|e| Error::Io(e.into_error()))?;
                file.sync_all()?;
                Ok(())
            })();
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, pack_dir.join(format!("{pack}.{ext}")))?;
        }
    }
    if refs_version > 0 {
        let mut text = Vec::new();
        store.get(&refs_key(repo_id, refs_version), data_key, &mut text)?;
        let snapshot = RefsSnapshot::parse(&String::from_utf8_lossy(&text))?;
        snapshot.write_to(cache)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_are_confined() {
        for bad in ["", "../x", "a/../b", "a//b", "/abs", "a/b c", "a\0b"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
        assert!(valid_key("repos/abc/packs/pack-1.pack"));
    }

    #[test]
    fn objects_roundtrip_and_are_ciphertext_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DurableStore::new(tmp.path());
        let key = SecretKey::generate();
        store
            .put("repos/r/refs/1", &key, &b"PLAINTEXT-MARKER"[..])
            .unwrap();
        let raw = std::fs::read(tmp.path().join("repos/r/refs/1")).unwrap();
        assert!(!raw.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
        let mut out = Vec::new();
        store.get("repos/r/refs/1", &key, &mut out).unwrap();
        assert_eq!(out, b"PLAINTEXT-MARKER");
        // Moved to another key, it no longer decrypts.
        std::fs::create_dir_all(tmp.path().join("repos/r/refs")).unwrap();
        std::fs::copy(
            tmp.path().join("repos/r/refs/1"),
            tmp.path().join("repos/r/refs/2"),
        )
        .unwrap();
        assert!(store.get("repos/r/refs/2", &key, &mut Vec::new()).is_err());
        store.delete_repo("r").unwrap();
        assert!(!tmp.path().join("repos/r").exists());
    }

    #[test]
    fn a_write_that_fails_at_the_end_fails_the_restore() {
        // A small pack fits the write buffer: only the final flush writes
        // it, and on a full device (here /dev/full) that flush fails.
        let tmp = tempfile::tempdir().unwrap();
        let store = DurableStore::new(tmp.path().join("store"));
        let key = SecretKey::generate();
        store
            .put(&pack_key("r", "pack-1", "pack"), &key, &b"PACK"[..])
            .unwrap();
        store
            .put(&pack_key("r", "pack-1", "idx"), &key, &b"IDX"[..])
            .unwrap();
        let cache = tmp.path().join("cache");
        let pack_dir = cache.join("objects/pack");
        std::fs::create_dir_all(&pack_dir).unwrap();
        std::os::unix::fs::symlink("/dev/full", pack_dir.join(".restore-pack-1.pack")).unwrap();
        let r = restore_into_cache(&store, "r", &key, &cache, &["pack-1".into()], 0);
        assert!(r.is_err(), "a failed write was taken for a restored pack");
        assert!(!pack_dir.join("pack-1.pack").exists());
        // With room again, the next restore brings the pack back.
        restore_into_cache(&store, "r", &key, &cache, &["pack-1".into()], 0).unwrap();
        assert_eq!(
            std::fs::read(pack_dir.join("pack-1.pack")).unwrap(),
            b"PACK"
        );
    }

    #[test]
    fn snapshots_apply_updates_and_roundtrip() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let mut s = RefsSnapshot {
            head: "ref: refs/heads/main".into(),
            refs: BTreeMap::new(),
        };
        s.apply_updates(&format!(
            "{ZERO} {a} refs/heads/main\n{ZERO} {b} refs/tags/v1\n"
        ))
        .unwrap();
        s.apply_updates(&format!("{b} {ZERO} refs/tags/v1\n"))
            .unwrap();
        assert_eq!(s.refs.len(), 1);
        assert_eq!(RefsSnapshot::parse(&s.serialize()).unwrap(), s);
        assert!(s.apply_updates("nonsense").is_err());
        assert!(RefsSnapshot::parse("# nubo refs v1\nzz refs/heads/x\n").is_err());
    }
}
