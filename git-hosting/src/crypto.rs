//! Envelope encryption, as CodeCommit does it with KMS: every repository has
//! its own random data key; data keys are stored only wrapped (encrypted) by
//! the master key, bound to the repository id. Files are encrypted with the
//! data key in the STREAM construction (chunked ChaCha20-Poly1305), so packs
//! of any size stream through in constant memory and a truncated, reordered
//! or moved file fails to decrypt.

use std::io::{Read, Write};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Result};

/// Plaintext bytes per encrypted chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 6] = b"NUBO1\n";
const PREFIX: usize = 7;

/// A 256-bit key that is wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    pub fn generate() -> SecretKey {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        SecretKey(k)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<SecretKey> {
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Crypto("a key must be exactly 32 bytes".into()))?;
        Ok(SecretKey(k))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Encrypts a small secret (a data key, a key check) under `key`, bound to
/// `context`; returns base64 of nonce ‖ ciphertext.
pub fn seal(key: &SecretKey, context: &[u8], plaintext: &[u8]) -> String {
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: context,
            },
        )
        .expect("ChaCha20-Poly1305 encryption of a small buffer cannot fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Reverses [`seal`]; fails for a wrong key or context, or tampering.
pub fn open(key: &SecretKey, context: &[u8], sealed: &str) -> Result<Vec<u8>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| Error::Crypto("sealed value is not base64".into()))?;
    if bytes.len() < 12 + TAG {
        return Err(Error::Crypto("sealed value is too short".into()));
    }
    let (nonce, ciphertext) = bytes.split_at(12);
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: context,
            },
        )
        .map_err(|_| Error::Crypto("wrong key, or the sealed value was altered".into()))
}

/// Wraps a repository's data key under the master key.
pub fn wrap_data_key(master: &SecretKey, repo_id: &str, data_key: &SecretKey) -> String {
    seal(master, &wrap_context(repo_id), data_key.as_bytes())
}

/// Unwraps a repository's data key.
pub fn unwrap_data_key(master: &SecretKey, repo_id: &str, wrapped: &str) -> Result<SecretKey> {
    let mut bytes = open(master, &wrap_context(repo_id), wrapped)?;
    let key = SecretKey::from_bytes(&bytes);
    bytes.zeroize();
    key
}

fn wrap_context(repo_id: &str) -> Vec<u8> {
    format!("nubo:data-key:{repo_id}").into_bytes()
}

fn chunk_nonce(prefix: &[u8; PREFIX], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..PREFIX].copy_from_slice(prefix);
    n[PREFIX..PREFIX + 4].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    n
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Encrypts `input` to `output`. `aad` names what the file is (repository
/// and object name), so a file copied elsewhere does not decrypt.
pub fn encrypt_stream(
    key: &SecretKey,
    aad: &[u8],
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64> {
    let cipher = key.cipher();
    let mut prefix = [0u8; PREFIX];
    rand::rngs::OsRng.fill_bytes(&mut prefix);
    output.write_all(MAGIC)?;
    output.write_all(&prefix)?;
    let mut buf = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut have = read_full(&mut input, &mut buf)?;
    let mut counter: u32 = 0;
    let mut total = 0u64;
    loop {
        // Look ahead one chunk to know whether this one is the last.
        let more = if have == CHUNK {
            read_full(&mut input, &mut next)?
        } else {
            0
        };
        let last = more == 0;
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&chunk_nonce(&prefix, counter, last)),
                Payload {
                    msg: &buf[..have],
                    aad,
                },
            )
            .map_err(|_| Error::Crypto("encryption failed".into()))?;
        output.write_all(&sealed)?;
        total += have as u64;
        if last {
            break;
        }
        std::mem::swap(&mut buf, &mut next);
        have = more;
        counter = counter
            .checked_add(1)
            .ok_or_else(|| Error::Crypto("file too large to encrypt".into()))?;
    }
    buf.zeroize();
    next.zeroize();
    Ok(total)
}

/// Decrypts what [`encrypt_stream`] wrote. Fails on a wrong key or `aad`,
/// and on any truncation, reordering or alteration.
pub fn decrypt_stream(
    key: &SecretKey,
    aad: &[u8],
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64> {
    let cipher = key.cipher();
    let mut header = [0u8; 6 + PREFIX];
    if read_full(&mut input, &mut header)? != header.len() || &header[..6] != MAGIC {
        return Err(Error::Crypto("not a Nubo encrypted file".into()));
    }
    let prefix: [u8; PREFIX] = header[6..].try_into().expect("fixed size");
    let mut buf = vec![0u8; CHUNK + TAG];
    let mut next = vec![0u8; CHUNK + TAG];
    let mut have = read_full(&mut input, &mut buf)?;
    let mut counter: u32 = 0;
    let mut total = 0u64;
    loop {
        if have < TAG {
            return Err(Error::Crypto("encrypted file is truncated".into()));
        }
        let more = if have == CHUNK + TAG {
            read_full(&mut input, &mut next)?
        } else {
            0
        };
        let last = more == 0;
        let mut plain = cipher
            .decrypt(
                Nonce::from_slice(&chunk_nonce(&prefix, counter, last)),
                Payload {
                    msg: &buf[..have],
                    aad,
                },
            )
            .map_err(|_| {
                Error::Crypto("wrong key, or the encrypted file was truncated or altered".into())
            })?;
        output.write_all(&plain)?;
        total += plain.len() as u64;
        plain.zeroize();
        if last {
            return Ok(total);
        }
        std::mem::swap(&mut buf, &mut next);
        have = more;
        counter = counter
            .checked_add(1)
            .ok_or_else(|| Error::Crypto("encrypted file too large".into()))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let key = SecretKey::generate();
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = Vec::new();
        encrypt_stream(&key, b"repo/pack", &data[..], &mut enc).unwrap();
        assert!(enc.len() >= data.len() + 16);
        let mut dec = Vec::new();
        decrypt_stream(&key, b"repo/pack", &enc[..], &mut dec).unwrap();
        assert_eq!(dec, data, "length {len}");
    }

    #[test]
    fn streams_roundtrip_at_chunk_edges() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5] {
            roundtrip(len);
        }
    }

    #[test]
    fn tampering_truncation_and_wrong_context_fail() {
        let key = SecretKey::generate();
        let data = vec![42u8; 2 * CHUNK + 10];
        let mut enc = Vec::new();
        encrypt_stream(&key, b"a", &data[..], &mut enc).unwrap();
        let mut sink = Vec::new();
        assert!(
            decrypt_stream(&key, b"b", &enc[..], &mut sink).is_err(),
            "wrong aad"
        );
        assert!(
            decrypt_stream(&SecretKey::generate(), b"a", &enc[..], &mut sink).is_err(),
            "wrong key"
        );
        // Cut exactly at a chunk boundary: the last-chunk flag catches it.
        let cut = 6 + PREFIX + 2 * (CHUNK + TAG);
        assert!(
            decrypt_stream(&key, b"a", &enc[..cut], &mut Vec::new()).is_err(),
            "truncated"
        );
        let mut flipped = enc.clone();
        flipped[100] ^= 1;
        assert!(
            decrypt_stream(&key, b"a", &flipped[..], &mut Vec::new()).is_err(),
            "altered"
        );
    }

    #[test]
    fn plaintext_does_not_appear_in_ciphertext() {
        let key = SecretKey::generate();
        let data = b"SECRET-MARKER ".repeat(1000);
        let mut enc = Vec::new();
        encrypt_stream(&key, b"x", &data[..], &mut enc).unwrap();
        assert!(!enc.windows(13).any(|w| w == b"SECRET-MARKER"));
    }

    #[test]
    fn data_keys_wrap_and_bind_to_their_repository() {
        let master = SecretKey::generate();
        let data = SecretKey::generate();
        let wrapped = wrap_data_key(&master, "r1", &data);
        assert_eq!(
            unwrap_data_key(&master, "r1", &wrapped).unwrap().as_bytes(),
            data.as_bytes()
        );
        assert!(unwrap_data_key(&master, "r2", &wrapped).is_err());
        assert!(unwrap_data_key(&SecretKey::generate(), "r1", &wrapped).is_err());
    }
}
