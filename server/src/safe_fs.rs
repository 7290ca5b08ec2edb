//! Reading files that someone else controls: a workspace's `.git/HEAD`, a
//! build's buildspec, what a build's sandbox or container leaves in its
//! output directory. Every component is opened without following links
//! (`openat` with `O_NOFOLLOW`), the last one without blocking
//! (`O_NONBLOCK`: a FIFO cannot hang the server), only a regular file is
//! read, and never more than a cap (`/dev/zero` or a huge file cannot
//! exhaust memory).

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

fn cstr(s: &str) -> std::io::Result<CString> {
    CString::new(s).map_err(|_| std::io::Error::other("a path with a NUL byte"))
}

fn openat(dir: Option<&OwnedFd>, name: &str, flags: i32) -> std::io::Result<OwnedFd> {
    let c = cstr(name)?;
    let at = dir.map(|d| d.as_raw_fd()).unwrap_or(libc::AT_FDCWD);
    // SAFETY: a valid C string and a directory fd we own (or AT_FDCWD).
    let fd = unsafe { libc::openat(at, c.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `rel` (relative, `/`-separated, no `..`) under the trusted
/// directory `base` without following a link anywhere below `base`, and
/// answers it if it is a regular file.
pub fn open_regular(base: &Path, rel: &str) -> std::io::Result<File> {
    let parts: Vec<&str> = rel
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{rel:?} is not a path inside the directory"),
        ));
    }
    let base = base
        .to_str()
        .ok_or_else(|| std::io::Error::other("a path that is not UTF-8"))?;
    // `base` itself is ours: its own components may be links.
    let c = cstr(base)?;
    // SAFETY: a valid C string.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new fd nobody else owns.
    let mut dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let (last, dirs) = parts.split_last().expect("not empty");
    for part in dirs {
        dir = openat(Some(&dir), part, libc::O_DIRECTORY | libc::O_RDONLY)?;
    }
    let fd = openat(Some(&dir), last, libc::O_RDONLY | libc::O_NONBLOCK)?;
    let file = File::from(fd);
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{rel} is not a regular file"),
        ));
    }
    Ok(file)
}

/// Reads at most `cap` bytes of the regular file `rel` under `base`;
/// a larger file is an error (`FileTooLarge`).
pub fn read_capped(base: &Path, rel: &str, cap: u64) -> std::io::Result<Vec<u8>> {
    let file = open_regular(base, rel)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("{rel} is larger than {cap} bytes"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_devices_and_big_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir(base.join("d")).unwrap();
        std::fs::write(base.join("d/ok"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(
            read_capped(base, "d/ok", 100).unwrap(),
            b"ref: refs/heads/main\n"
        );
        std::os::unix::fs::symlink("/etc/passwd", base.join("d/link")).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", base.join("zero")).unwrap();
        let fifo = CString::new(base.join("fifo").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        for bad in [
            "d/link",
            "dirlink/passwd",
            "zero",
            "fifo",
            "d",
            "../d/ok",
            "",
        ] {
            assert!(read_capped(base, bad, 100).is_err(), "{bad}");
        }
        std::fs::write(base.join("big"), vec![b'x'; 101]).unwrap();
        let e = read_capped(base, "big", 100).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
    }
}
