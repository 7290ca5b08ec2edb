//! A Podman service of the test's own, for the container backend.

use super::*;

/// A Podman API service on a socket of its own, for container workspaces;
/// removes the containers made against it and stops it when dropped.
pub struct Podman {
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Podman {
    pub fn start() -> Podman {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("podman.sock");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/podman.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("service")
            .arg(&socket)
            .output()
            .expect("run scripts/podman.sh");
        assert!(
            out.status.success(),
            "the podman service did not start (the test command installs it: scripts/podman.sh install):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Podman { socket, _dir: dir }
    }

    /// `(NUBO_CONTAINER_SOCKET, path)` for `Server::start`.
    pub fn env(&self) -> (&'static str, String) {
        ("NUBO_CONTAINER_SOCKET", self.socket.display().to_string())
    }

    /// The same, borrowed, to list beside other settings.
    pub fn env_ref(&self) -> (&'static str, &str) {
        ("NUBO_CONTAINER_SOCKET", self.socket.to_str().unwrap())
    }

    pub fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .arg("--url")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Podman {
    /// `podman rm -f` of one container, again while Podman refuses because
    /// the container is still exiting.
    pub fn rm(&self, id: &str) -> Output {
        let mut out = self.podman(&["rm", "-f", "-t", "0", id]);
        for _ in 0..20 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
            out = self.podman(&["rm", "-f", "-t", "0", id]);
        }
        out
    }

    /// Removes the containers labelled `label` whose mount ending in
    /// `mount` is gone (their test's data went with it).
    fn remove_orphans(&self, label: &str, mount: &str) {
        let out = self.podman(&["ps", "-aq", "--filter", &format!("label={label}")]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let inspect = self.podman(&[
                "inspect",
                "--format",
                "{{range .Mounts}}{{.Source}} {{end}}",
                id,
            ]);
            let mounts = String::from_utf8_lossy(&inspect.stdout).to_string();
            let orphan = mounts
                .split_whitespace()
                .filter(|m| m.ends_with(mount))
                .all(|m| !Path::new(m).exists());
            if orphan {
                let _ = self.rm(id);
            }
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.remove_orphans("io.nubo.workspace", "/files");
        self.remove_orphans("io.nubo.deploy-target", "/srv");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/podman.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&self.socket)
            .output();
    }
}
