//! Resource limits of a sandbox as a control group: memory, processes and
//! CPU, on cgroup v2 (`/sys/fs/cgroup` unified) or v1 (one hierarchy per
//! controller, as on this project's Debian machines). Every sandbox gets
//! `nubo/<name>` below each hierarchy; the sandbox's first process joins it
//! before it execs, so all its descendants are inside.
//!
//! Where no controller can be used (not root, no cgroupfs), [`Cgroup::create`]
//! answers None and the sandbox falls back to rlimits.

use std::fs::File;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// The limits of one sandbox.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_mb: u64,
    pub cpus: f64,
    pub pids: i64,
}

/// The directories of one sandbox's control group (one per hierarchy).
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> bool {
    std::fs::write(path, value).is_ok()
}

fn v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

impl Cgroup {
    /// The directories a sandbox named `name` has (or would have).
    fn dirs_of(name: &str) -> Vec<PathBuf> {
        if v2() {
            vec![Path::new(ROOT).join("nubo").join(name)]
        } else {
            ["memory", "pids", "cpu"]
                .iter()
                .map(|c| Path::new(ROOT).join(c).join("nubo").join(name))
                .collect()
        }
    }

    /// Makes the group with its limits; None when limits cannot be set here.
    pub fn create(name: &str, limits: Limits) -> Option<Cgroup> {
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let memory = (limits.memory_mb * 1024 * 1024).to_string();
        let quota = ((limits.cpus * 100_000.0) as u64).max(1000).to_string();
        let pids = limits.pids.to_string();
        let mut dirs = Vec::new();
        if v2() {
            let parent = Path::new(ROOT).join("nubo");
            let _ = std::fs::create_dir_all(&parent);
            // Controllers must be enabled on the way down.
            for dir in [Path::new(ROOT), parent.as_path()] {
                for c in ["+memory", "+pids", "+cpu"] {
                    let _ = write(&dir.join("cgroup.subtree_control"), c);
                }
            }
            let dir = parent.join(name);
            if std::fs::create_dir_all(&dir).is_err() {
                return None;
            }
            let ok = write(&dir.join("memory.max"), &memory) & write(&dir.join("pids.max"), &pids);
            let _ = write(&dir.join("memory.swap.max"), "0");
            let _ = write(&dir.join("cpu.max"), &format!("{quota} 100000"));
            dirs.push(dir);
            if !ok {
                Cgroup { dirs }.remove();
                return None;
            }
        } else {
            let mut ok = true;
            for (controller, settings) in [
                ("memory", vec![("memory.limit_in_bytes", memory.clone())]),
                ("pids", vec![("pids.max", pids.clone())]),
                (
                    "cpu",
                    vec![
                        ("cpu.cfs_period_us", "100000".to_string()),
                        ("cpu.cfs_quota_us", quota.clone()),
                    ],
                ),
            ] {
                let base = Path::new(ROOT).join(controller);
                if !base.join("cgroup.procs").exists() {
                    ok &= controller == "cpu";
                    continue;
                }
                let dir = base.join("nubo").join(name);
                if std::fs::create_dir_all(&dir).is_err() {
                    ok = false;
                    continue;
                }
                for (file, value) in settings {
                    ok &= write(&dir.join(file), &value) || controller == "cpu";
                }
                if controller == "memory" {
                    // Swap counted with memory, where the kernel accounts it.
                    let _ = write(&dir.join("memory.memsw.limit_in_bytes"), &memory);
                }
                dirs.push(dir);
            }
            if !ok {
                Cgroup { dirs }.remove();
                return None;
            }
        }
        Some(Cgroup { dirs })
    }

    /// The group of a sandbox made earlier (by this or an earlier server).
    pub fn existing(name: &str) -> Cgroup {
        Cgroup {
            dirs: Self::dirs_of(name)
                .into_iter()
                .filter(|d| d.is_dir())
                .collect(),
        }
    }

    /// `cgroup.procs` of every hierarchy, open for writing: the sandbox's
    /// first process writes `0` to each to join before it execs.
    pub fn procs_files(&self) -> std::io::Result<Vec<File>> {
        self.dirs
            .iter()
            .map(|d| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
            })
            .collect()
    }

    fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for d in &self.dirs {
            if let Ok(text) = std::fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Kills every process in the group.
    pub fn kill_all(&self) {
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                // SAFETY: a plain signal.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Kills what is left and removes the group.
    pub fn remove(self) {
        self.kill_all();
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}
