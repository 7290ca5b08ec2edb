//! The HTTPS listener's certificate: the configured one, or a self-signed
//! one generated into `<data_dir>/tls/` on first start and reused after.

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::error::{Error, Result};

/// PEM certificate chain and private key.
pub struct CertificatePem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    /// Where the certificate came from, for the start-up message.
    pub source: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Internal(format!("cannot read {}: {e}", path.display())))
}

/// Loads the configured certificate, or the generated one (creating it on
/// first use). Names in the generated one: localhost, 127.0.0.1, ::1 and
/// the host of `public_url`.
pub fn load_or_generate(settings: &Settings) -> Result<CertificatePem> {
    match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            return Ok(CertificatePem {
                cert: read(cert)?,
                key: read(key)?,
                source: cert.clone(),
            })
        }
        (None, None) => {}
        _ => {
            return Err(Error::Unprocessable(
                "give both tls_cert and tls_key, or neither for a self-signed certificate".into(),
            ))
        }
    }
    let dir = settings.data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok(CertificatePem {
            cert: read(&cert_path)?,
            key: read(&key_path)?,
            source: cert_path,
        });
    }
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Some(host) = settings
        .public_url
        .as_deref()
        .and_then(|u| u.split("://").nth(1))
        .and_then(|rest| rest.split(['/', ':']).next())
        .filter(|h| !h.is_empty())
    {
        names.push(host.to_string());
    }
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| Error::Internal(format!("cannot generate a TLS certificate: {e}")))?;
    let cert = generated.cert.pem().into_bytes();
    let key = generated.signing_key.serialize_pem().into_bytes();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
    write_private(&key_path, &key)?;
    // The certificate last: its presence means the pair is complete.
    write_private(&cert_path, &cert)?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(CertificatePem {
        cert,
        key,
        source: cert_path,
    })
}

/// Writes a file readable by its owner only, atomically and durably.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let io = |e: std::io::Error| Error::Internal(format!("cannot write {}: {e}", path.display()));
    let mut f = options.open(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}
