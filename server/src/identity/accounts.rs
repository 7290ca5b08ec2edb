//! User accounts: names, argon2 password hashes, the admin and disabled
//! flags, and the first-start administrator.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::Rng;
use serde::Serialize;
use sqlx::SqlitePool;
use utoipa::ToSchema;

use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{Error, Result};

/// A user as the rest of the server sees it (no password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    #[serde(skip)]
    pub id: String,
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub must_change_password: bool,
    /// RFC 3339.
    pub created_at: String,
    /// Sessions that began before this (ms) are over (a password reset).
    #[serde(skip)]
    pub sessions_after: i64,
}

type UserRow = (String, String, bool, bool, bool, i64, i64);
const USER_COLUMNS: &str =
    "id, name, is_admin, disabled, must_change_password, created_at, sessions_after";

fn from_row(r: UserRow) -> User {
    User {
        id: r.0,
        name: r.1,
        admin: r.2,
        disabled: r.3,
        must_change_password: r.4,
        created_at: rfc3339(r.5),
        sessions_after: r.6,
    }
}

pub const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 1024;

/// User names: 1–64 of letters, digits, `.`, `_`, `-`, starting with a
/// letter or digit. Unique regardless of case.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Unprocessable(format!(
            "user name {name:?} is not allowed: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

pub fn validate_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(Error::Unprocessable(format!(
            "password is too short: use at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::Unprocessable(format!(
            "password is too long: use at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored PHC hash. A malformed hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Argon2 is deliberately slow: keep it off the async workers.
pub(crate) async fn hash_blocking(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

/// Creates a user in one statement: it exists whole or not at all.
pub async fn create_user(
    pool: &SqlitePool,
    name: &str,
    password: &str,
    admin: bool,
    must_change_password: bool,
) -> Result<User> {
    validate_name(name).map_err(|e| e.on_field("username"))?;
    validate_password(password).map_err(|e| e.on_field("password"))?;
    let hash = hash_blocking(password.to_string()).await?;
    let id = new_id();
    let now = now_ms();
    let result = sqlx::query(
        "INSERT INTO users (id, name, password_hash, is_admin, disabled, must_change_password, created_at, updated_at)
         VALUES ($1, $2, $3, $4, FALSE, $5, $6, $6)",
    )
    .bind(&id)
    .bind(name)
    .bind(&hash)
    .bind(admin)
    .bind(must_change_password)
    .bind(now)
    .execute(pool)
    .await;
    match result {
        Ok(_) => Ok(User {
            id,
            name: name.to_string(),
            admin,
            disabled: false,
            must_change_password,
            created_at: rfc3339(now),
            sessions_after: 0,
        }),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::Conflict(format!(
            "a user named {name:?} already exists"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub async fn find_by_name(pool: &SqlitePool, name: &str) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE lower(name) = lower($1)"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(from_row))
}

/// The oldest enabled administrator (the CLI acts as them where a command
/// needs a viewer).
pub async fn first_admin(pool: &SqlitePool) -> Result<Option<User>> {
    let row: Option<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE is_admin AND NOT disabled ORDER BY created_at LIMIT 1"
    ))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(from_row))
}

pub async fn find_by_id(pool: &SqlitePool, id: &str) -> Result<Option<User>> {
    let row: Option<UserRow> =
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(from_row))
}

/// Looks a user up by name or fails with a 404 that names them.
pub async fn require_by_name(pool: &SqlitePool, name: &str) -> Result<User> {
    find_by_name(pool, name)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user named {name:?}")))
}

pub async fn list(pool: &SqlitePool) -> Result<Vec<User>> {
    let rows: Vec<UserRow> = sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY lower(name)"
    ))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn count(pool: &SqlitePool) -> Result<i64> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?)
}

/// The outcome of checking a name and password.
pub enum Login {
    Ok(User),
    /// Right password, but an admin disabled the account.
    Disabled,
    /// Unknown user or wrong password (deliberately not told apart).
    Invalid,
}

/// Checks credentials. Unknown users cost as much time as known ones, so
/// response times do not reveal which names exist.
pub async fn check_login(pool: &SqlitePool, name: &str, password: &str) -> Result<Login> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE lower(name) = lower($1)")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    let (id, hash) = match row {
        Some(r) => r,
        None => (String::new(), dummy_hash().to_string()),
    };
    let password = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    if !matches || id.is_empty() {
        return Ok(Login::Invalid);
    }
    match find_by_id(pool, &id).await? {
        Some(user) if user.disabled => Ok(Login::Disabled),
        Some(user) => Ok(Login::Ok(user)),
        None => Ok(Login::Invalid),
    }
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default())
}

pub async fn set_disabled(pool: &SqlitePool, name: &str, disabled: bool) -> Result<User> {
    let user = require_by_name(pool, name).await?;
    sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
        .bind(disabled)
        .bind(now_ms())
        .bind(&user.id)
        .execute(pool)
        .await?;
    Ok(User { disabled, ..user })
}

/// Makes a user an administrator, or an ordinary user again.
pub async fn set_admin(pool: &SqlitePool, name: &str, admin: bool) -> Result<User> {
    let user = require_by_name(pool, name).await?;
    sqlx::query("UPDATE users SET is_admin = $1, updated_at = $2 WHERE id = $3")
        .bind(admin)
        .bind(now_ms())
        .bind(&user.id)
        .execute(pool)
        .await?;
    Ok(User { admin, ..user })
}

/// Replaces a password; `must_change` marks it as one to be replaced at next sign-in.
pub async fn set_password(
    pool: &SqlitePool,
    user_id: &str,
    password: &str,
    must_change: bool,
) -> Result<()> {
    validate_password(password)?;
    let hash = hash_blocking(password.to_string()).await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(&hash)
    .bind(must_change)
    .bind(now_ms())
    .bind(user_id)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound("that user no longer exists".into()));
    }
    Ok(())
}

/// A random password of letters and digits, for the first administrator.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// On the very first start (no users at all) creates `admin` with a random
/// one-time password and returns it, so that it can be printed once.
/// Returns `None` whenever any user exists.
pub async fn bootstrap_admin(pool: &SqlitePool) -> Result<Option<String>> {
    if count(pool).await? > 0 {
        return Ok(None);
    }
    let password = generate_password();
    let hash = hash_blocking(password.clone()).await?;
    let now = now_ms();
    // Conditional insert: two processes starting at once create one admin.
    let done = sqlx::query(
        "INSERT INTO users (id, name, password_hash, is_admin, disabled, must_change_password, created_at, updated_at)
         SELECT $1, 'admin', $2, TRUE, FALSE, TRUE, $3, $3
         WHERE NOT EXISTS (SELECT 1 FROM users)",
    )
    .bind(new_id())
    .bind(&hash)
    .bind(now)
    .execute(pool)
    .await?;
    Ok((done.rows_affected() == 1).then_some(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("garbage", "correct horse"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn names_are_checked() {
        for ok in ["alice", "a", "Bob.Smith", "ci-bot_2"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            "-x",
            ".hidden",
            "a/b",
            "../x",
            "a b",
            "é",
            &"x".repeat(65),
            "a\nb",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(validate_password("1234567").is_err());
        validate_password("12345678").unwrap();
    }

    #[test]
    fn generated_passwords_are_long_and_varied() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_password());
    }
}
