//! One shell process fed commands on its standard input, as the user a
//! phase runs as (`run-as`).

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, ChildStdin, Command as Process, Stdio};
use std::sync::mpsc;

use base64::Engine;

use super::{now_stamp, Options};

pub(super) enum Event {
    Line(String),
    Status(i32),
    Export(String, String),
    Eof,
}

/// One shell process fed commands on its standard input.
pub(super) struct Session {
    pub child: Child,
    stdin: ChildStdin,
    pub events: mpsc::Receiver<Event>,
    pub nonce: String,
}

impl Session {
    pub fn start(
        shell: &str,
        opts: &Options,
        env: &[(String, String)],
        user: Option<&User>,
    ) -> anyhow::Result<Session> {
        let mut fds = [0; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            anyhow::bail!("cannot make a pipe: {}", std::io::Error::last_os_error());
        }
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        use std::os::unix::process::CommandExt;
        let mut command = Process::new(shell);
        command
            .arg("-s")
            .current_dir(&opts.source)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(u) = user {
            command
                .env("HOME", &u.home)
                .env("USER", &u.name)
                .env("LOGNAME", &u.name);
            let (uid, gid) = (u.uid, u.gid);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    if libc::setgroups(1, &gid) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::from(write.try_clone()?))
            .stderr(Stdio::from(write))
            .process_group(0)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {shell}: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let nonce = format!("__NUBO_{}", hex::encode(rand::random::<[u8; 8]>()));
        let (tx, events) = mpsc::channel();
        let marker = nonce.clone();
        let cap = opts.log_cap;
        std::thread::spawn(move || {
            let mut reader = BufReader::new(std::fs::File::from(read));
            let mut buf = Vec::new();
            let mut logged = 0usize;
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                if let Some(at) = line.find(&marker) {
                    let (before, rest) = line.split_at(at);
                    if !before.is_empty() {
                        let _ = tx.send(Event::Line(before.to_string()));
                    }
                    let rest = &rest[marker.len()..];
                    if let Some(code) = rest.strip_prefix(':') {
                        let _ = tx.send(Event::Status(code.trim().parse().unwrap_or(1)));
                    } else if let Some(kv) = rest.strip_prefix("_EXPORT:") {
                        let (k, v) = kv.split_once(':').unwrap_or((kv, ""));
                        let v = base64::engine::general_purpose::STANDARD
                            .decode(v.trim())
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default();
                        let _ = tx.send(Event::Export(k.to_string(), v));
                    }
                    continue;
                }
                logged += line.len() + 1;
                if logged > cap {
                    if logged - line.len() - 1 <= cap {
                        let _ = tx.send(Event::Line(format!(
                            "[Container] {} Output beyond {cap} bytes is not kept",
                            now_stamp()
                        )));
                    }
                    continue;
                }
                let _ = tx.send(Event::Line(line.to_string()));
            }
            let _ = tx.send(Event::Eof);
        });
        Ok(Session {
            child,
            stdin,
            events,
            nonce,
        })
    }

    pub fn send(&mut self, text: &str) -> bool {
        self.stdin.write_all(text.as_bytes()).is_ok() && self.stdin.flush().is_ok()
    }

    pub fn kill(&mut self) {
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A user commands run as (`run-as`).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Looks a user up in /etc/passwd.
pub fn lookup_user(name: &str) -> Option<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[0] == name).then(|| User {
            name: f[0].to_string(),
            uid: f[2].parse().unwrap_or(u32::MAX),
            gid: f[3].parse().unwrap_or(u32::MAX),
            home: f[5].to_string(),
        })
    })
}
