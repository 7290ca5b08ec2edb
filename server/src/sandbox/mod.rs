//! The local sandbox: how the embedded default runs user code (local
//! workspaces, image-less builds) without a container engine and never as
//! the server's user. Built on bubblewrap (`bwrap`, user namespaces):
//!
//! - The process runs as `sandbox_uid` on the host (uid 1000 inside), with
//!   no capabilities, `no_new_privs`, in its own user, mount, PID, IPC, UTS
//!   and network namespaces, a new session (no TIOCSTI into our terminal).
//! - It sees `/usr` (and the root's `bin`, `lib*`, `sbin` links), a short
//!   list of `/etc` files, a fresh `/proc`, a minimal `/dev`, a private
//!   `/tmp`, and only the directories it is given (the workspace's or the
//!   build's). The data dir, other workspaces and agent sockets are not in
//!   its mount namespace at all.
//! - Memory, processes and CPU are limited by a control group where one can
//!   be made ([`crate::cgroup`]), else processes by `RLIMIT_NPROC`.
//!
//! The server runs as root: the directories given to a sandbox live in the
//! data dir (mode 0700), which the sandbox's uid cannot even traverse. So
//! the child first makes a private mount namespace as root, binds each of
//! them (opened beforehand, by descriptor) into a tmpfs staging area
//! reachable by anyone, drops to `sandbox_uid` and only then runs bwrap,
//! which binds them from there. Nothing of this is visible outside the
//! child. A server that is not root runs bwrap directly, as itself.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod network;

pub use network::Network;
use network::{EXIT_FD, INFO_FD};

use crate::cgroup::{Cgroup, Limits};
use crate::config::Settings;

/// The uid (and gid) processes have inside a sandbox.
pub const INSIDE_UID: u32 = 1000;
/// Where the staging tmpfs goes in the child's private mount namespace.
const STAGE: &str = "/run";
/// The descriptor numbers the child moves its bind sources to.
const FIRST_FD: i32 = 1000;
/// `/etc` entries a sandbox sees (what shells, git, TLS, locales and
/// common toolchains read). Anything that may hold the machine's secrets
/// (`shadow`, `npmrc`, `pip.conf`, `ssh/`, Nubo's own config) is left out.
const ETC: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "bash_completion.d",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "environment",
    "gai.conf",
    "gitconfig",
    "host.conf",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "locale.gen",
    "localtime",
    "magic",
    "magic.mime",
    "mailcap",
    "manpath.config",
    "mime.types",
    "nanorc",
    "nsswitch.conf",
    "os-release",
    "perl",
    "profile",
    "profile.d",
    "protocols",
    "python3",
    "services",
    "skel",
    "ssl",
    "terminfo",
    "timezone",
    "vim",
    "wgetrc",
];

/// A usable sandbox on this machine.
#[derive(Debug, Clone)]
pub struct Sandbox {
    bwrap: PathBuf,
    uid: u32,
    /// slirp4netns, for outbound network (`sandbox_network = "outbound"`).
    slirp: Option<PathBuf>,
}

/// One directory (or file) given to a sandbox.
#[derive(Debug, Clone)]
pub struct Bind {
    pub host: PathBuf,
    pub inside: String,
    pub writable: bool,
}

impl Bind {
    pub fn rw(host: impl Into<PathBuf>, inside: &str) -> Bind {
        Bind {
            host: host.into(),
            inside: inside.into(),
            writable: true,
        }
    }

    pub fn ro(host: impl Into<PathBuf>, inside: &str) -> Bind {
        Bind {
            host: host.into(),
            inside: inside.into(),
            writable: false,
        }
    }
}

/// What to run in a sandbox.
pub struct Spec {
    pub binds: Vec<Bind>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub command: Vec<String>,
    pub hostname: String,
    /// Ends with the server (builds) or outlives it (workspaces).
    pub die_with_parent: bool,
    /// The control group's name (`ws-<id>`, `build-<id>`).
    pub name: String,
    pub limits: Limits,
    /// A directory of the server's where the sandbox's `/etc/passwd`,
    /// `group` and `hosts` are written.
    pub etc_dir: PathBuf,
    /// Outbound network (where the server allows it and slirp4netns is
    /// installed); else only a loopback of its own.
    pub network: bool,
}

static PROBED: OnceLock<Result<Sandbox, String>> = OnceLock::new();

/// The sandbox of this machine, or why there is none (checked once, by
/// running `true` in one).
pub fn available(settings: &Settings) -> Result<Sandbox, String> {
    PROBED.get_or_init(|| probe(settings)).clone()
}

fn probe(settings: &Settings) -> Result<Sandbox, String> {
    if settings.local_sandbox == "none" {
        return Err(
            "the local sandbox is turned off on this server (local_sandbox = \"none\")".into(),
        );
    }
    let bwrap = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("bubblewrap is not installed (apt-get install bubblewrap)")?;
    // As root, sandboxes run as sandbox_uid; a server that is not root
    // can only give them its own uid (still in namespaces of their own).
    let uid = if unsafe { libc::geteuid() } == 0 {
        settings.sandbox_uid
    } else {
        unsafe { libc::geteuid() }
    };
    let slirp = (settings.sandbox_network == "outbound")
        .then(|| {
            ["/usr/bin/slirp4netns", "/usr/local/bin/slirp4netns"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
        .flatten();
    let sandbox = Sandbox { bwrap, uid, slirp };
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
    let spec = Spec {
        binds: vec![Bind::rw(tmp.path(), "/probe")],
        env: vec![],
        cwd: "/probe".into(),
        command: vec!["/bin/sh".into(), "-c".into(), "echo ok > /probe/out".into()],
        hostname: "probe".into(),
        die_with_parent: true,
        name: format!("probe-{}", std::process::id()),
        limits: Limits {
            memory_mb: 256,
            cpus: 1.0,
            pids: 64,
        },
        etc_dir: tmp.path().join("etc"),
        network: false,
    };
    let _ = chown(tmp.path(), uid);
    let result = sandbox.command(&spec).and_then(|(mut c, cg, _)| {
        let out = c.output();
        if let Some(cg) = cg {
            cg.remove();
        }
        let out = out.map_err(|e| format!("cannot run bubblewrap: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "bubblewrap cannot make a sandbox here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    });
    match result {
        Ok(()) if std::fs::read_to_string(tmp.path().join("out")).is_ok_and(|s| s == "ok\n") => {
            Ok(sandbox)
        }
        Ok(()) => Err("the sandbox ran but could not write to its directory".into()),
        Err(e) => Err(e),
    }
}

/// A pipe, both ends close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: a two-element array for pipe2.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "cannot make a pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: two new descriptors nobody else owns.
    unsafe {
        Ok((
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]),
            <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
        ))
    }
}

/// `lchown` (never follows a link).
pub fn chown(path: &Path, uid: u32) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::other("a path with a NUL byte"))?;
    // SAFETY: a valid C string.
    if unsafe { libc::lchown(c.as_ptr(), uid, uid) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Gives a tree to `uid` without following links (the server makes these
/// trees; a link in them is never followed out).
pub fn chown_tree(path: &Path, uid: u32) -> std::io::Result<()> {
    chown(path, uid)?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid)?;
        }
    }
    Ok(())
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

impl Sandbox {
    /// The host uid sandboxed processes run as.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// A command that runs `spec` in a sandbox, and its control group.
    /// Whether sandboxes here get outbound network.
    pub fn has_network(&self) -> bool {
        self.slirp.is_some()
    }

    /// A command that runs `spec` in a sandbox, its control group, and
    /// its network to attach once the command runs.
    pub fn command(
        &self,
        spec: &Spec,
    ) -> Result<(Command, Option<Cgroup>, Option<Network>), String> {
        let root = unsafe { libc::geteuid() } == 0;
        std::fs::create_dir_all(&spec.etc_dir)
            .map_err(|e| format!("cannot prepare the sandbox: {e}"))?;
        for (file, text) in [
            (
                "passwd",
                format!(
                    "root:x:0:0:root:/root:/usr/sbin/nologin\nnubo:x:{INSIDE_UID}:{INSIDE_UID}:nubo:/home/nubo:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                ),
            ),
            (
                "group",
                format!("root:x:0:\nnubo:x:{INSIDE_UID}:\nnogroup:x:65534:\n"),
            ),
            (
                "hosts",
                format!("127.0.0.1\tlocalhost {0}\n::1\tlocalhost {0}\n", spec.hostname),
            ),
        ] {
            std::fs::write(spec.etc_dir.join(file), text)
                .map_err(|e| format!("cannot prepare the sandbox: {e}"))?;
        }
        // The network's pipes: the read ends for us (Network), the write
        // ends for the child (bubblewrap reports its process on one; the
        // other, inherited by everything in the sandbox, ends slirp4netns
        // when the last of them exits).
        let (network, child_fds) = match (&self.slirp, spec.network) {
            (Some(slirp), true) => {
                let (info_read, info_write) = pipe()?;
                let (exit_read, exit_write) = pipe()?;
                (
                    Some(Network {
                        info: std::fs::File::from(info_read),
                        exit_read,
                        slirp: slirp.clone(),
                    }),
                    Some((info_write, exit_write)),
                )
            }
            _ => (None, None),
        };
        // slirp4netns answers DNS at 10.0.2.3 (forwarding to the host's).
        std::fs::write(spec.etc_dir.join("resolv.conf"), "nameserver 10.0.2.3\n")
            .map_err(|e| format!("cannot prepare the sandbox: {e}"))?;
        let mut binds: Vec<Bind> = spec.binds.clone();
        let mut etc_files = vec!["passwd", "group", "hosts"];
        if network.is_some() {
            etc_files.push("resolv.conf");
        }
        for file in etc_files {
            binds.push(Bind::ro(spec.etc_dir.join(file), &format!("/etc/{file}")));
        }
        let mut sources: Vec<(CString, bool)> = Vec::new();
        for b in &binds {
            let path = CString::new(b.host.as_os_str().as_encoded_bytes())
                .map_err(|_| "a path with a NUL byte".to_string())?;
            let is_dir = std::fs::metadata(&b.host)
                .map_err(|e| format!("cannot give {} to the sandbox: {e}", b.inside))?
                .is_dir();
            sources.push((path, is_dir));
        }
        let cgroup = Cgroup::create(&spec.name, spec.limits);
        let cgroup_files = match &cgroup {
            Some(cg) => cg
                .procs_files()
                .map_err(|e| format!("cannot join the control group: {e}"))?,
            None => Vec::new(),
        };

        let mut args: Vec<String> = vec![
            "--unshare-all".into(),
            "--uid".into(),
            INSIDE_UID.to_string(),
            "--gid".into(),
            INSIDE_UID.to_string(),
            "--hostname".into(),
            spec.hostname.clone(),
            "--new-session".into(),
            "--cap-drop".into(),
            "ALL".into(),
            "--ro-bind".into(),
            "/usr".into(),
            "/usr".into(),
        ];
        if spec.die_with_parent {
            args.push("--die-with-parent".into());
        }
        // The root's links into /usr (or its directories, unmerged).
        for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(top);
            match std::fs::read_link(&host) {
                Ok(target) => args.extend([
                    "--symlink".into(),
                    target.display().to_string(),
                    format!("/{top}"),
                ]),
                Err(_) if host.is_dir() => {
                    args.extend(["--ro-bind".into(), format!("/{top}"), format!("/{top}")])
                }
                Err(_) => {}
            }
        }
        args.extend(
            [
                "--proc",
                "/proc",
                "--dev",
                "/dev",
                "--tmpfs",
                "/dev/shm",
                "--tmpfs",
                "/tmp",
                "--dir",
                "/run",
                "--dir",
                "/etc",
                "--dir",
                "/home",
                "--dir",
                "/opt/nubo/bin",
            ]
            .map(String::from),
        );
        if let Ok(entries) = std::fs::read_dir("/etc") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if ETC.contains(&name.as_str()) || name.starts_with("java-") {
                    args.extend([
                        "--ro-bind-try".into(),
                        format!("/etc/{name}"),
                        format!("/etc/{name}"),
                    ]);
                }
            }
        }
        for (i, b) in binds.iter().enumerate() {
            let source = if root {
                format!("{STAGE}/{i}")
            } else {
                b.host.display().to_string()
            };
            let flag = if b.writable { "--bind" } else { "--ro-bind" };
            args.extend([flag.into(), source, b.inside.clone()]);
        }
        if network.is_some() {
            args.extend(["--info-fd".into(), INFO_FD.to_string()]);
        }
        args.extend(["--chdir".into(), spec.cwd.clone(), "--clearenv".into()]);
        for (k, v) in &spec.env {
            args.extend(["--setenv".into(), k.clone(), v.clone()]);
        }
        args.push("--".into());
        args.extend(spec.command.iter().cloned());

        let mut cmd = Command::new(&self.bwrap);
        cmd.args(&args).env_clear();
        if let Some((_, v)) = spec.env.iter().find(|(k, _)| k == "NUBO_BUILD_ID") {
            // Marks the sandbox itself, so a restart finds leftovers.
            cmd.env("NUBO_BUILD_ID", v);
        }
        if !spec.die_with_parent {
            cmd.env("NUBO_WORKSPACE_ID", &spec.name);
        }
        // Everything the child needs, made before it forks.
        let stage = c(STAGE);
        let tmpfs = c("tmpfs");
        let options = c("mode=0755,size=64k");
        let none = c("none");
        let root_dir = c("/");
        // The child opens each source once in its own mount namespace
        // (before the staging tmpfs covers anything), moves the descriptor
        // to a fixed number and binds it by `/proc/self/fd/N`.
        let mounts: Vec<(CString, i32, CString, CString, bool)> = sources
            .into_iter()
            .enumerate()
            .map(|(i, (path, is_dir))| {
                let fd = FIRST_FD + i as i32;
                (
                    path,
                    fd,
                    c(&format!("/proc/self/fd/{fd}")),
                    c(&format!("{STAGE}/{i}")),
                    is_dir,
                )
            })
            .collect();
        let procs: Vec<i32> = cgroup_files.iter().map(|f| f.as_raw_fd()).collect();
        // The info pipe's write end and the exit pipe's write end, to
        // fixed numbers the child keeps across exec.
        let network_fds = child_fds
            .as_ref()
            .map(|(info, exit)| (info.as_raw_fd(), exit.as_raw_fd()));
        let (uid, pids) = (self.uid, spec.limits.pids as u64);
        let detach = !spec.die_with_parent;
        let limited_by_cgroup = cgroup.is_some();
        // SAFETY: between fork and exec only async-signal-safe calls, on
        // data prepared above (no allocation).
        unsafe {
            cmd.pre_exec(move || {
                let _keep = (&cgroup_files, &child_fds);
                if let Some((info, exit)) = network_fds {
                    if libc::dup2(info, INFO_FD) < 0 || libc::dup2(exit, EXIT_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for &fd in &procs {
                    if libc::write(fd, b"0\n".as_ptr().cast(), 2) != 2 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if detach && libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if root {
                    if libc::unshare(libc::CLONE_NEWNS) != 0
                        || libc::mount(
                            std::ptr::null(),
                            root_dir.as_ptr(),
                            std::ptr::null(),
                            libc::MS_REC | libc::MS_PRIVATE,
                            std::ptr::null(),
                        ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    for (path, fd, _, _, _) in &mounts {
                        let opened = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
                        if opened < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        if opened != *fd {
                            if libc::dup3(opened, *fd, libc::O_CLOEXEC) < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            libc::close(opened);
                        }
                    }
                    if libc::mount(
                        none.as_ptr(),
                        stage.as_ptr(),
                        tmpfs.as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        options.as_ptr().cast(),
                    ) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    for (_, _, source, target, is_dir) in &mounts {
                        let made = if *is_dir {
                            libc::mkdir(target.as_ptr(), 0o755) == 0
                        } else {
                            let fd = libc::open(
                                target.as_ptr(),
                                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                                0o644,
                            );
                            fd >= 0 && libc::close(fd) == 0
                        };
                        if !made
                            || libc::mount(
                                source.as_ptr(),
                                target.as_ptr(),
                                std::ptr::null(),
                                libc::MS_BIND | libc::MS_REC,
                                std::ptr::null(),
                            ) != 0
                        {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    let gid = uid as libc::gid_t;
                    if libc::setgroups(1, &gid) != 0
                        || libc::setresgid(gid, gid, gid) != 0
                        || libc::setresuid(uid, uid, uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                if !limited_by_cgroup {
                    let lim = libc::rlimit {
                        rlim_cur: pids,
                        rlim_max: pids,
                    };
                    libc::setrlimit(libc::RLIMIT_NPROC, &lim);
                }
                Ok(())
            });
        }
        Ok((
            cmd,
            Cgroup::existing_if(&spec.name, limited_by_cgroup),
            network,
        ))
    }
}

impl Cgroup {
    /// The group `name` again (the one given to the command is kept in it).
    fn existing_if(name: &str, made: bool) -> Option<Cgroup> {
        made.then(|| Cgroup::existing(name))
    }
}
