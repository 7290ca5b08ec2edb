//! Masking secret values in build logs: the value itself and the forms it
//! commonly takes on the way out (base64, URL-encoded, JSON-escaped).

use base64::Engine;

#[derive(Debug, Clone, Default)]
pub struct Masker {
    needles: Vec<String>,
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Masker {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Masker {
        let mut needles = Vec::new();
        for s in secrets {
            if s.len() < 3 {
                // Masking "a" would blank out half the log.
                continue;
            }
            let b64 = base64::engine::general_purpose::STANDARD;
            let json = serde_json::to_string(&s).unwrap_or_default();
            let hex = hex::encode(s.as_bytes());
            let mut forms = vec![
                s.clone(),
                b64.encode(&s),
                b64.encode(&s).trim_end_matches('=').to_string(),
                url_encode(&s),
                url_encode(&s).to_lowercase(),
                json[1..json.len() - 1].to_string(),
                hex.to_uppercase(),
                hex,
            ];
            // The log is masked line by line: a multi-line secret (a PEM
            // key) shows up one line at a time, and so does base64 wrapped
            // by `base64` (76 columns) or `openssl base64` (64).
            for line in s.lines() {
                forms.push(line.trim_end_matches('\r').to_string());
            }
            let encoded = b64.encode(&s);
            for width in [76, 64] {
                if encoded.len() > width {
                    forms.extend(
                        encoded
                            .as_bytes()
                            .chunks(width)
                            .map(|c| String::from_utf8_lossy(c).into_owned()),
                    );
                }
            }
            for form in forms {
                if form.trim().len() >= 3 && !needles.contains(&form) {
                    needles.push(form);
                }
            }
        }
        // Longest first, so a form containing another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Masker { needles }
    }

    pub fn mask(&self, line: &str) -> String {
        let mut out = line.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_form_is_masked() {
        let m = super::Masker::new(["p@ss w\"rd".to_string()]);
        for line in [
            "raw p@ss w\"rd end",
            "b64 cEBzcyB3InJk end",
            "url p%40ss%20w%22rd end",
            "json p@ss w\\\"rd end",
        ] {
            let masked = m.mask(line);
            assert!(
                masked.contains("***") && !masked.contains("ss w"),
                "{line} -> {masked}"
            );
        }
        assert_eq!(super::Masker::new(["ab".to_string()]).mask("abc"), "abc");
    }

    #[test]
    fn multi_line_and_hex_forms_are_masked() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
        let m = super::Masker::new([pem.to_string()]);
        for line in pem.lines() {
            assert_eq!(m.mask(line), "***", "{line}");
        }
        let hex = hex::encode(pem);
        assert!(!m.mask(&hex).contains(&hex[..20]));
        assert!(!m
            .mask(&hex.to_uppercase())
            .contains(&hex.to_uppercase()[..20]));
        // `base64` wraps at 76 columns.
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        use base64::Engine;
        for chunk in b64.as_bytes().chunks(76) {
            let chunk = std::str::from_utf8(chunk).unwrap();
            assert_eq!(m.mask(chunk), "***", "{chunk}");
        }
    }
}
