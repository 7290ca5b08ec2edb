//! The agent's own steps: unpacking a bundle (nothing may land outside the
//! archive directory), Install (remove what the previous deployment
//! installed, copy the new files by `file_exists_behavior`, record them,
//! apply `permissions`) and keeping the last revisions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nubo_runner::appspec::{AppSpec, FileExists, Kind};

use super::hooks::{Failure, Log};
use super::wire::code;

/// Revisions kept per deployment group (the last successful one is kept too).
pub const MAX_REVISIONS: usize = 5;

fn unknown(message: impl Into<String>) -> Failure {
    Failure::new(code::UNKNOWN, None, message)
}

/// A path inside the archive: relative, no `..`.
fn safe_relative(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Whether a link at `entry` (relative) pointing to `target` stays inside.
fn link_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = entry.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Unpacks `tar` into `dest`, refusing the whole bundle if any entry would
/// land (or point) outside it or is a device or fifo.
pub fn extract(tar: &Path, dest: &Path) -> Result<usize, Failure> {
    let check = |tar: &Path| -> Result<(), Failure> {
        let f = fs::File::open(tar).map_err(|e| unknown(format!("cannot open the bundle: {e}")))?;
        let mut a = tar::Archive::new(f);
        for e in a
            .entries()
            .map_err(|e| unknown(format!("the bundle is not a tar archive: {e}")))?
        {
            let e = e.map_err(|e| unknown(format!("the bundle is damaged: {e}")))?;
            let path = e
                .path()
                .map_err(|e| unknown(format!("a bundle path is not valid: {e}")))?
                .into_owned();
            use tar::EntryType as T;
            let kind = e.header().entry_type();
            if matches!(
                kind,
                T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
            ) {
                continue;
            }
            if !safe_relative(&path) {
                return Err(unknown(format!(
                    "the bundle holds {} that would land outside the archive; nothing was unpacked",
                    path.display()
                )));
            }
            match kind {
                T::Regular | T::Directory | T::Continuous => {}
                T::Symlink | T::Link => {
                    let target = e
                        .link_name()
                        .ok()
                        .flatten()
                        .map(|l| l.into_owned())
                        .unwrap_or_default();
                    let inside = if kind == T::Link {
                        safe_relative(&target)
                    } else {
                        link_stays_inside(&path, &target)
                    };
                    if !inside {
                        return Err(unknown(format!("the bundle holds a link {} -> {} leading outside the archive; nothing was unpacked", path.display(), target.display())));
                    }
                }
                _ => {
                    return Err(unknown(format!(
                        "the bundle holds {}, which is neither a file, a directory nor a link",
                        path.display()
                    )))
                }
            }
        }
        Ok(())
    };
    check(tar)?;
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest)
        .map_err(|e| unknown(format!("cannot create {}: {e}", dest.display())))?;
    let f = fs::File::open(tar).map_err(|e| unknown(format!("cannot open the bundle: {e}")))?;
    let mut a = tar::Archive::new(f);
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    let mut n = 0;
    for e in a.entries().map_err(|e| unknown(e.to_string()))? {
        let mut e = e.map_err(|e| unknown(format!("the bundle is damaged: {e}")))?;
        if e.unpack_in(dest)
            .map_err(|err| unknown(format!("cannot unpack the bundle: {err}")))?
        {
            n += 1;
        }
    }
    Ok(n)
}

fn instructions(root: &Path) -> PathBuf {
    root.join("deployment-instructions")
}

/// The deployment directory of the group's last successful install.
pub fn last_successful(root: &Path, group_id: &str) -> Option<PathBuf> {
    let p = instructions(root).join(format!("{group_id}_last_successful_install"));
    let dir = PathBuf::from(fs::read_to_string(p).ok()?.trim());
    dir.join("deployment-archive").is_dir().then_some(dir)
}

/// Writes a file so that a crash leaves the old or the new content.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

struct Installer<'a> {
    behavior: FileExists,
    dest_root: &'a Path,
    /// Installed paths in creation order (directories we made, then files).
    installed: Vec<PathBuf>,
}

impl Installer<'_> {
    fn inside(&self, p: &Path) -> Result<(), Failure> {
        if p.starts_with(self.dest_root) {
            Ok(())
        } else {
            Err(unknown(format!(
                "the destination {} is outside {}, where this agent may install",
                p.display(),
                self.dest_root.display()
            )))
        }
    }

    fn make_dirs(&mut self, dir: &Path) -> Result<(), Failure> {
        let mut missing = Vec::new();
        let mut d = dir;
        while !d.exists() {
            missing.push(d.to_path_buf());
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        for m in missing.into_iter().rev() {
            fs::create_dir(&m)
                .map_err(|e| unknown(format!("cannot create {}: {e}", m.display())))?;
            self.installed.push(m);
        }
        Ok(())
    }

    fn place(&mut self, from: &Path, to: &Path) -> Result<(), Failure> {
        if let Ok(m) = fs::symlink_metadata(to) {
            match self.behavior {
                FileExists::Disallow => {
                    return Err(unknown(format!(
                        "The deployment failed because a specified file already exists at this location: {} (file_exists_behavior is DISALLOW)",
                        to.display()
                    )))
                }
                FileExists::Retain => return Ok(()),
                FileExists::Overwrite => {
                    let r = if m.is_dir() { fs::remove_dir_all(to) } else { fs::remove_file(to) };
                    r.map_err(|e| unknown(format!("cannot replace {}: {e}", to.display())))?;
                }
            }
        }
        let m = fs::symlink_metadata(from).map_err(|e| unknown(e.to_string()))?;
        if m.file_type().is_symlink() {
            let target = fs::read_link(from).map_err(|e| unknown(e.to_string()))?;
            std::os::unix::fs::symlink(target, to)
        } else {
            fs::copy(from, to).map(|_| ())
        }
        .map_err(|e| unknown(format!("cannot install {}: {e}", to.display())))?;
        self.installed.push(to.to_path_buf());
        Ok(())
    }

    fn copy_tree(&mut self, from: &Path, to: &Path) -> Result<(), Failure> {
        self.make_dirs(to)?;
        let mut entries: Vec<_> = fs::read_dir(from)
            .map_err(|e| unknown(e.to_string()))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let ft = e.file_type().map_err(|e| unknown(e.to_string()))?;
            let target = to.join(e.file_name());
            if ft.is_dir() {
                if fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
                    self.place(&e.path(), &target)?;
                } else {
                    self.copy_tree(&e.path(), &target)?;
                }
            } else {
                self.place(&e.path(), &target)?;
            }
        }
        Ok(())
    }
}

/// Removes what the group's previous deployment installed (files, then the
/// directories it made, when empty).
fn clean_up(cleanup: &Path) {
    let Ok(list) = fs::read_to_string(cleanup) else {
        return;
    };
    for line in list.lines().rev() {
        let p = Path::new(line);
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir(p);
            }
            Ok(_) => {
                let _ = fs::remove_file(p);
            }
            Err(_) => {}
        }
    }
}

fn glob_set(patterns: &[String]) -> globset::GlobSet {
    let mut b = globset::GlobSetBuilder::new();
    for p in patterns {
        if let Ok(g) = globset::Glob::new(p) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| globset::GlobSet::empty())
}

fn lookup_id(name: &str, user: bool) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let c = std::ffi::CString::new(name).ok()?;
    unsafe {
        if user {
            let pw = libc::getpwnam(c.as_ptr());
            (!pw.is_null()).then(|| (*pw).pw_uid)
        } else {
            let gr = libc::getgrnam(c.as_ptr());
            (!gr.is_null()).then(|| (*gr).gr_gid)
        }
    }
}

/// Applies `permissions` to what this Install copied.
fn apply_permissions(spec: &AppSpec, installed: &[PathBuf]) -> Result<(), Failure> {
    for p in &spec.permissions {
        let object = Path::new(&p.object);
        let pattern = glob_set(std::slice::from_ref(&p.pattern));
        let except = glob_set(&p.except);
        let uid = match &p.owner {
            Some(o) => Some(
                lookup_id(o, true)
                    .ok_or_else(|| unknown(format!("permissions: no user {o:?} on this target")))?,
            ),
            None => None,
        };
        let gid =
            match &p.group {
                Some(g) => Some(lookup_id(g, false).ok_or_else(|| {
                    unknown(format!("permissions: no group {g:?} on this target"))
                })?),
                None => None,
            };
        for path in installed {
            let Ok(rel) = path.strip_prefix(object) else {
                continue;
            };
            let is_dir = path.is_dir();
            let selected = if rel.as_os_str().is_empty() {
                true
            } else {
                (p.pattern == "**" || pattern.is_match(rel)) && !except.is_match(rel)
            };
            let kind_ok = p.kinds.is_empty()
                || p.kinds.contains(if is_dir {
                    &Kind::Directory
                } else {
                    &Kind::File
                });
            if !selected || !kind_ok {
                continue;
            }
            if let Some(mode) = p.mode {
                fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| {
                    unknown(format!("cannot set the mode of {}: {e}", path.display()))
                })?;
            }
            if uid.is_some() || gid.is_some() {
                std::os::unix::fs::lchown(path, uid, gid).map_err(|e| {
                    unknown(format!(
                        "cannot change the owner of {}: {e}",
                        path.display()
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// The Install step of deployment `dir` (`<root>/<group>/<deployment>`).
pub fn install(
    root: &Path,
    group_id: &str,
    deployment_id: &str,
    spec: &AppSpec,
    dest_root: &Path,
    log: &mut Log,
) -> Result<usize, Failure> {
    let dir = root.join(group_id).join(deployment_id);
    let archive = dir.join("deployment-archive");
    let instr = instructions(root);
    fs::create_dir_all(&instr).map_err(|e| unknown(e.to_string()))?;
    let _ = write_atomic(
        &instr.join(format!("{group_id}_most_recent_install")),
        dir.to_string_lossy().as_bytes(),
    );
    let cleanup = instr.join(format!("{group_id}-cleanup"));
    clean_up(&cleanup);
    let mut inst = Installer {
        behavior: spec.file_exists_behavior,
        dest_root,
        installed: Vec::new(),
    };
    let mut result = Ok(());
    for f in &spec.files {
        let from = if f.source.is_empty() {
            archive.clone()
        } else {
            archive.join(&f.source)
        };
        let to = PathBuf::from(&f.destination);
        result = inst.inside(&to).and_then(|_| {
            let m = fs::symlink_metadata(&from).map_err(|_| {
                unknown(format!(
                    "files: the source {} is not in the bundle",
                    f.source
                ))
            })?;
            if m.is_dir() {
                inst.copy_tree(&from, &to)
            } else {
                inst.make_dirs(&to)?;
                let name = from.file_name().unwrap_or_default();
                inst.place(&from, &to.join(name))
            }
        });
        if result.is_err() {
            break;
        }
    }
    // Whatever was copied is recorded, even on failure, so the next
    // deployment removes it.
    let list: String = inst
        .installed
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    write_atomic(&cleanup, list.as_bytes())
        .map_err(|e| unknown(format!("cannot record the installed files: {e}")))?;
    let record = serde_json::json!({"deployment_id": deployment_id, "files": inst.installed});
    let _ = write_atomic(
        &instr.join(format!("{group_id}-install.json")),
        record.to_string().as_bytes(),
    );
    result?;
    apply_permissions(spec, &inst.installed)?;
    log.line(&format!(
        "Install - {} files and directories installed",
        inst.installed.len()
    ));
    // AWS's rule: the revision is the last successful one once Install is through.
    write_atomic(
        &instr.join(format!("{group_id}_last_successful_install")),
        dir.to_string_lossy().as_bytes(),
    )
    .map_err(|e| unknown(e.to_string()))?;
    prune(root, group_id);
    Ok(inst.installed.len())
}

/// Keeps the newest revisions of the group and the last successful one.
pub fn prune(root: &Path, group_id: &str) {
    let keep = last_successful(root, group_id);
    let Ok(entries) = fs::read_dir(root.join(group_id)) else {
        return;
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            (
                e.metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH),
                e.path(),
            )
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
    for (_, d) in dirs.into_iter().skip(MAX_REVISIONS) {
        if Some(&d) != keep.as_ref() {
            let _ = fs::remove_dir_all(&d);
        }
    }
}
