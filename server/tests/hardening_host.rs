//! Attacks by a local user of the machine (not a Nubo account) that must
//! fail: taking over the cache directory of plaintext repositories before
//! the server makes it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, BIN};

/// Starts `nubo serve` with `cache_dir` and answers (exit code, stderr)
/// when it refuses to start, or None when it started.
fn start_with_cache(data: &std::path::Path, cache: &std::path::Path) -> Option<(i32, String)> {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0"])
        .args(["--preview-http", "127.0.0.1:0"])
        .env_remove("NUBO_CONFIG")
        .env("NUBO_CACHE_DIR", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Some((status.code().unwrap_or(-1), err));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn a_cache_dir_made_by_someone_else_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // A directory the attacker made, open to everyone, with a planted hook.
    let planted = tmp.path().join("planted");
    std::fs::create_dir_all(planted.join("x.git/hooks")).unwrap();
    std::fs::write(planted.join("x.git/hooks/pre-receive"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // As another user (only root can make this here).
        let c = std::ffi::CString::new(planted.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 1000, 1000) }, 0);
    }
    let (code, err) = start_with_cache(&data, &planted).expect("the server must refuse");
    assert_ne!(code, 0);
    assert!(err.contains("refusing the cache dir"), "{err}");
    if root {
        assert!(err.contains("belongs to uid 1000"), "{err}");
    } else {
        assert!(err.contains("mode is 777"), "{err}");
    }
    assert!(
        planted.join("x.git/hooks/pre-receive").exists(),
        "nothing of it is used or touched"
    );

    // A link to a directory elsewhere is refused too.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let (_, err) = start_with_cache(&data, &link).expect("the server must refuse");
    assert!(err.contains("symbolic link"), "{err}");

    // A fresh path is made 0700 and used.
    let fresh = tmp.path().join("fresh");
    let mut server = Server::start_in(&data, &[("NUBO_CACHE_DIR", fresh.to_str().unwrap())], &[]);
    let mode = std::fs::symlink_metadata(&fresh)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    server.kill();
}
