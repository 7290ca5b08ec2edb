//! A sandbox's outbound network: slirp4netns (user-mode NAT) attached to
//! the network namespace bubblewrap made, the host's loopback refused.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::pipe;

/// A sandbox's outbound network, set up once bubblewrap has made its
/// namespaces: slirp4netns (user-mode NAT, the host's loopback refused)
/// joined to the sandbox's network namespace. It ends by itself when the
/// last process of the sandbox does (its exit pipe closes).
pub struct Network {
    pub(super) info: std::fs::File,
    pub(super) exit_read: OwnedFd,
    pub(super) slirp: PathBuf,
}

/// The descriptors bubblewrap gets for `--info-fd` and the exit pipe.
pub(super) const INFO_FD: i32 = 998;
pub(super) const EXIT_FD: i32 = 997;

impl Network {
    /// Call right after the sandbox's command was spawned.
    pub fn attach(self) -> Result<(), String> {
        use std::io::Read;
        let mut pfd = libc::pollfd {
            fd: self.info.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 10_000) } <= 0 {
            return Err("the sandbox did not start in time".into());
        }
        let mut text = String::new();
        let mut info = self.info;
        let _ = (&mut info).take(4096).read_to_string(&mut text);
        let pid = text
            .split("\"child-pid\"")
            .nth(1)
            .and_then(|r| {
                r.trim_start_matches([':', ' '])
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
            })
            .ok_or_else(|| format!("the sandbox did not say its process: {text:?}"))?;
        // bubblewrap says its process before that process has set up its
        // loopback (over netlink); slirp4netns configuring the namespace at
        // the same moment makes that fail. Wait until the loopback is up
        // (it then has ::1), at most a second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            let up = std::fs::read_to_string(format!("/proc/{pid}/net/if_inet6"))
                .is_ok_and(|t| t.lines().any(|l| l.trim_end().ends_with(" lo")));
            if up {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // The network namespace by its path: given a pid, slirp4netns
        // also joins that process's user namespace, which bubblewrap may
        // already have replaced by a nested one that has no say over the
        // network namespace (`setns(CLONE_NEWNET): Operation not
        // permitted`). The server, in the initial one, may join it.
        let netns = format!("/proc/{pid}/ns/net");
        if start_slirp(&self.slirp, &netns, &self.exit_read)? {
            Ok(())
        } else {
            Err("slirp4netns did not configure the sandbox's network".into())
        }
    }
}

/// Runs slirp4netns for the network namespace at `netns`; answers
/// whether it said the network is configured (it exits when it fails).
fn start_slirp(slirp: &Path, netns: &str, exit_read: &OwnedFd) -> Result<bool, String> {
    let exit = exit_read.as_raw_fd();
    // slirp4netns says on this pipe when the network is configured: the
    // sandbox is not handed over before (a command run at once would find
    // no route).
    let (ready_read, ready_write) = pipe()?;
    let ready = ready_write.as_raw_fd();
    let mut cmd = Command::new(slirp);
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--exit-fd",
        "3",
        "--ready-fd",
        "4",
        "--netns-type=path",
        netns,
        "tap0",
    ])
    .env_clear()
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    // SAFETY: dup2 and setsid only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(exit, 3) < 0 || libc::dup2(ready, 4) < 0 || libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start slirp4netns: {e}"))?;
    drop(ready_write);
    std::thread::spawn(move || {
        let mut child = child;
        let _ = child.wait();
    });
    let mut pfd = libc::pollfd {
        fd: ready_read.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd. A slirp4netns that gave up closes the
    // pipe: the poll ends at once and the read finds nothing.
    let polled = unsafe { libc::poll(&mut pfd, 1, 10_000) };
    let mut byte = [0u8; 1];
    let read = if polled > 0 {
        // SAFETY: at most one byte into a one-byte buffer.
        unsafe { libc::read(ready_read.as_raw_fd(), byte.as_mut_ptr().cast(), 1) }
    } else {
        0
    };
    Ok(read == 1)
}
