//! The key the preview origin's tokens and cookies are signed with, and
//! their signing and checking (the preview transport hands them out and
//! takes them back).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::db::now_ms;

/// The key previews' tokens and cookies are signed with (one per process:
/// after a restart, owners come through Nubo's entry again).
#[derive(Clone)]
pub struct PreviewKey([u8; 32]);

impl Default for PreviewKey {
    fn default() -> Self {
        PreviewKey(rand::random())
    }
}

impl PreviewKey {
    fn mac(&self, text: &str) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        m.update(text.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// `kind.ws.port.user.expiry.mac`; `kind` keeps a token from passing as
    /// a cookie and the other way round.
    pub fn sign(&self, kind: &str, ws: &str, port: u16, user: &str, ttl_ms: i64) -> String {
        let body = format!("{kind}.{ws}.{port}.{user}.{}", now_ms() + ttl_ms);
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// The user a token or cookie was made for, if it is genuine, current
    /// and for this workspace and port.
    pub fn verify(&self, kind: &str, value: &str, ws: &str, port: u16) -> Option<String> {
        let (body, mac) = value.rsplit_once('.')?;
        if !bool::from(self.mac(body).as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let parts: Vec<&str> = body.split('.').collect();
        let [k, w, p, user, expiry] = parts.as_slice() else {
            return None;
        };
        let fresh = expiry.parse::<i64>().ok()? > now_ms();
        (*k == kind && *w == ws && *p == port.to_string() && fresh).then(|| user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_their_preview_kind_and_time() {
        let key = PreviewKey::default();
        let t = key.sign("t", "w1", 3000, "u1", 60_000);
        assert_eq!(key.verify("t", &t, "w1", 3000).as_deref(), Some("u1"));
        assert!(key.verify("t", &t, "w2", 3000).is_none());
        assert!(key.verify("t", &t, "w1", 3001).is_none());
        assert!(
            key.verify("c", &t, "w1", 3000).is_none(),
            "a token is no cookie"
        );
        assert!(PreviewKey::default().verify("t", &t, "w1", 3000).is_none());
        let old = key.sign("t", "w1", 3000, "u1", -1);
        assert!(key.verify("t", &old, "w1", 3000).is_none());
        let forged = t.replace(".u1.", ".u2.");
        assert!(key.verify("t", &forged, "w1", 3000).is_none());
    }
}
