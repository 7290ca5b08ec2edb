//! Pipeline variables: `#{namespace.key}` in action configuration.

/// The `(namespace, key)` pairs `text` refers to, in order.
pub fn references(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        if let Some((ns, key)) = after[..end].split_once('.') {
            out.push((ns.trim().to_string(), key.trim().to_string()));
        }
        rest = &after[end + 1..];
    }
    out
}

/// `text` with each `#{namespace.key}` replaced by `lookup`'s answer; a
/// reference it does not know is left as written.
pub fn substitute(text: &str, lookup: impl Fn(&str, &str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("#{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        match inner
            .split_once('.')
            .and_then(|(ns, key)| lookup(ns.trim(), key.trim()))
        {
            Some(value) => out.push_str(&value),
            None => {
                out.push_str("#{");
                out.push_str(inner);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}
