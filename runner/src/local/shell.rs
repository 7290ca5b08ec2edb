//! Running commands in the build's shell session: its output logged
//! (masked), the build's timeout and stop honoured, a phase's commands
//! stopping at the first failure, expressions expanded, the cache restored
//! and saved.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::session::{Event, Session, User};
use super::{now_stamp, Options};
use crate::buildspec::Version;
use crate::mask::Masker;

pub(super) enum Ran {
    Exit(i32),
    TimedOut,
    Stopped,
}

pub(super) struct Runner<'a> {
    pub opts: &'a Options,
    pub env: Vec<(String, String)>,
    pub shell: String,
    pub session: Option<Session>,
    /// Who the current session runs as (None: the runner's own user).
    pub user: Option<User>,
    pub deadline: Instant,
    pub masker: Masker,
    pub sink: &'a mut dyn FnMut(&str),
    pub exported: Vec<(String, String)>,
}

impl Runner<'_> {
    pub fn log(&mut self, line: &str) {
        let masked = self.masker.mask(line);
        (self.sink)(&masked);
    }

    pub fn container(&mut self, message: &str) {
        let line = format!("[Container] {} {message}", now_stamp());
        self.log(&line);
    }

    pub fn session(&mut self) -> anyhow::Result<&mut Session> {
        if self.session.is_none() {
            self.session = Some(Session::start(
                &self.shell,
                self.opts,
                &self.env,
                self.user.as_ref(),
            )?);
        }
        Ok(self.session.as_mut().expect("just made"))
    }

    /// Runs `text` in the session; logs its output; answers its exit status.
    pub fn run(&mut self, text: &str) -> Ran {
        let session = match self.session() {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                self.container(&msg);
                return Ran::Exit(127);
            }
        };
        let nonce = session.nonce.clone();
        let script = format!("{{\n{text}\n}} </dev/null\nprintf '%s:%s\\n' '{nonce}' \"$?\"\n");
        if !session.send(&script) {
            return self.shell_gone();
        }
        self.wait()
    }

    pub fn cancelled(&self) -> bool {
        self.opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    pub fn wait(&mut self) -> Ran {
        loop {
            if self.cancelled() {
                if let Some(mut s) = self.session.take() {
                    s.kill();
                }
                return Ran::Stopped;
            }
            let left = self
                .deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(200));
            let Some(session) = self.session.as_mut() else {
                return Ran::Exit(1);
            };
            match session.events.recv_timeout(left) {
                Ok(Event::Line(l)) => self.log(&l),
                Ok(Event::Status(code)) => return Ran::Exit(code),
                Ok(Event::Export(k, v)) => self.exported.push((k, v)),
                Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return self.shell_gone()
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if Instant::now() < self.deadline {
                        continue;
                    }
                    if let Some(mut s) = self.session.take() {
                        s.kill();
                    }
                    return Ran::TimedOut;
                }
            }
        }
    }

    /// The shell ended (`exit` in a command): its status is the command's,
    /// and the next command gets a new session.
    pub fn shell_gone(&mut self) -> Ran {
        let code = self
            .session
            .take()
            .and_then(|mut s| s.child.wait().ok())
            .map(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or(s.signal().map(|n| 128 + n)).unwrap_or(1)
            })
            .unwrap_or(1);
        if self.opts.spec.version == Version::V02 {
            self.container("The shell session ended; the next command starts a new one (directory and variables are reset)");
        }
        Ran::Exit(code)
    }

    /// Runs a list of commands; stops at the first failure. Answers the
    /// failure (command, exit status) if any, or a timeout.
    pub fn commands(&mut self, list: &[crate::buildspec::Command]) -> Result<(), Failure> {
        for cmd in list {
            if self.cancelled() {
                return Err(Failure::Stopped);
            }
            if Instant::now() >= self.deadline {
                return Err(Failure::TimedOut);
            }
            self.container(&format!("Running command {}", cmd.text));
            if self.opts.spec.version == Version::V01 {
                self.session = None;
            }
            let ran = self.run(&cmd.text);
            if self.opts.spec.version == Version::V01 {
                self.session = None;
            }
            match ran {
                Ran::Exit(0) => {}
                Ran::Exit(code) => {
                    self.container(&format!(
                        "Command did not exit successfully {} exit status {code}",
                        cmd.text
                    ));
                    return Err(Failure::Command(cmd.text.clone(), code));
                }
                Ran::TimedOut => return Err(Failure::TimedOut),
                Ran::Stopped => return Err(Failure::Stopped),
            }
        }
        Ok(())
    }

    /// Expands `expr` (variables, `$(...)`) in the build's shell.
    pub fn eval(&mut self, expr: &str) -> Option<String> {
        let nonce = self.session().ok()?.nonce.clone();
        let quoted = expr
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('`', "\\`");
        let script = format!(
            "printf '%s_EXPORT:%s:%s\\n' '{nonce}' '__NUBO_EVAL' \"$(printf %s \"{quoted}\" | base64 | tr -d '\\n')\"\n"
        );
        let _ = self.run(&script);
        let at = self
            .exported
            .iter()
            .rposition(|(k, _)| k == "__NUBO_EVAL")?;
        Some(self.exported.remove(at).1)
    }

    pub fn restore_cache(&mut self, cache: &crate::buildspec::Cache, dir: &std::path::Path) {
        let key = self
            .eval(cache.key.as_deref().unwrap_or("default"))
            .unwrap_or_default();
        let fallbacks: Vec<String> = cache
            .fallback_keys
            .iter()
            .filter_map(|k| self.eval(k))
            .filter(|k| !k.is_empty())
            .collect();
        match crate::cache::find(dir, &key, &fallbacks) {
            None => self.container(&format!("Cache {key} not found; starting without it")),
            Some((found, file)) => match crate::cache::restore(&file, &self.opts.source) {
                Ok(()) => self.container(&format!("Restored cache {found}")),
                Err(e) => self.container(&format!("Cache {found} could not be restored: {e}")),
            },
        }
    }

    pub fn save_cache(&mut self, cache: &crate::buildspec::Cache, dir: &std::path::Path) {
        let key = self
            .eval(cache.key.as_deref().unwrap_or("default"))
            .unwrap_or_default();
        match crate::cache::save(dir, &key, &self.opts.source, &cache.paths) {
            Ok(bytes) => self.container(&format!("Saved cache {key} ({bytes} bytes)")),
            Err(e) => self.container(&format!("Cache {key} was not saved: {e}")),
        }
    }

    pub fn internal(&mut self, text: &str) {
        if self.opts.spec.version == Version::V02 {
            let _ = self.run(text);
        }
    }
}

pub(super) enum Failure {
    Command(String, i32),
    TimedOut,
    Stopped,
}
