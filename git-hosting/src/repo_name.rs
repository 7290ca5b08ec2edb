//! Repository names, with CodeCommit's rules: 1–100 of ASCII letters, digits,
//! `.`, `_` and `-`; not `.` or `..`; not ending in `.git`.

use crate::{Error, Result};

pub const MAX_LEN: usize = 100;

/// Checks a repository name; the error says what is allowed.
pub fn validate(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_LEN {
        Some("it is longer than 100 characters")
    } else if !name.chars().all(allowed) {
        Some("it may hold only letters, digits, '.', '_' and '-'")
    } else if name == "." || name == ".." {
        Some("'.' and '..' are reserved")
    } else if name.to_ascii_lowercase().ends_with(".git") {
        Some("it may not end in '.git'")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::InvalidName(format!(
            "repository name {name:?} is not allowed: {why}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecommit_names_pass() {
        for ok in ["app", "my-repo_2.0", "A", &"x".repeat(100), "..a", "-x"] {
            validate(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    #[test]
    fn hostile_names_fail() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\\b",
            "a b",
            "a\nb",
            "a\u{0}b",
            "é",
            "x.git",
            "X.GIT",
            &"x".repeat(101),
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
