//! Artifacts as a zip: builds' artifact directories streamed into one
//! archive (a batch's combined artifacts: one folder per build).

use super::*;

fn crc32(data: &[u8], mut crc: u32) -> u32 {
    crc = !crc;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Writes a zip archive (method "stored") of every regular file under
/// `dirs` into `out`, streaming: links and special files are skipped and
/// never followed (the tree was written by a build), files are opened
/// with `O_NOFOLLOW`, and the archive stops at the zip format's limits.
/// Several directories, each under its prefix (a folder in the archive;
/// empty for the top).
pub fn zip_dirs(dirs: &[(String, PathBuf)], out: &mut impl Write) -> std::io::Result<()> {
    fn walk(d: &Path, base: &Path, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(d) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = || {
                p.strip_prefix(base)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned()
            };
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 64 => walk(&p, base, depth + 1, out),
                Ok(t) if t.is_file() => out.push(rel()),
                _ => {}
            }
        }
    }
    // (name in the archive, directory, path below it)
    let mut files: Vec<(String, &Path, String)> = Vec::new();
    for (prefix, dir) in dirs {
        let mut found = Vec::new();
        walk(dir, dir, 0, &mut found);
        for rel in found {
            let name = if prefix.is_empty() {
                rel.clone()
            } else {
                format!("{prefix}/{rel}")
            };
            files.push((name, dir.as_path(), rel));
        }
    }
    files.truncate(u16::MAX as usize);
    let mut offset: u64 = 0;
    let mut central = Vec::new();
    let mut count: u16 = 0;
    for (name, dir, rel) in &files {
        let Ok(file) = crate::safe_fs::open_regular(dir, rel) else {
            continue;
        };
        let len = file.metadata()?.len();
        if offset + len + 1024 > u32::MAX as u64 {
            break;
        }
        // One pass for the CRC, one to copy: the file is not held in memory.
        let mut crc = 0u32;
        {
            let mut r = std::io::BufReader::new(&file);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = std::io::Read::read(&mut r, &mut buf)?;
                if n == 0 {
                    break;
                }
                crc = crc32(&buf[..n], crc);
            }
        }
        let header = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&sig.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes());
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
            h.extend_from_slice(&0u16.to_le_bytes()); // stored
            h.extend_from_slice(&0u16.to_le_bytes()); // time
            h.extend_from_slice(&0x21u16.to_le_bytes()); // date: 1980-01-01
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(len as u32).to_le_bytes());
            h.extend_from_slice(&(len as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attrs
                h.extend_from_slice(&0u32.to_le_bytes()); // external attrs
                h.extend_from_slice(&(offset as u32).to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        let local = header(0x0403_4b50, false);
        out.write_all(&local)?;
        let mut f = &file;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
        let copied = std::io::copy(&mut std::io::Read::take(f, len), out)?;
        if copied != len {
            return Err(std::io::Error::other(format!(
                "{name} changed while it was zipped"
            )));
        }
        central.extend(header(0x0201_4b50, true));
        offset += local.len() as u64 + len;
        count += 1;
    }
    out.write_all(&central)?;
    out.write_all(&0x0605_4b50u32.to_le_bytes())?;
    out.write_all(&[0, 0, 0, 0])?;
    out.write_all(&count.to_le_bytes())?;
    out.write_all(&count.to_le_bytes())?;
    out.write_all(&(central.len() as u32).to_le_bytes())?;
    out.write_all(&(offset as u32).to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(super::crc32(b"123456789", 0), 0xCBF4_3926);
    }

    #[test]
    fn names_are_checked() {
        assert!(super::validate_project_name("web-app_1").is_ok());
        for bad in ["a", "-x", "a b", "a/b"] {
            assert!(super::validate_project_name(bad).is_err(), "{bad}");
        }
    }
}
