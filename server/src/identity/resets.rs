//! Password reset links: an administrator makes a one-time link for a user
//! who lost their password; the user opens it, signed out, and chooses a
//! new one. The code travels in the link's fragment (`#code`), which
//! browsers never send, so it is in no request line or server log; the
//! page posts it in its form. Only its SHA-256 is stored; a link works
//! once, for [`RESET_HOURS`], and a newer one replaces it. Using it ends
//! every session the user had.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::identity::accounts::{self, User};

/// How long a reset link works.
pub const RESET_HOURS: i64 = 24;

fn digest(code: &str) -> String {
    hex::encode(Sha256::digest(code.trim().as_bytes()))
}

/// A new reset code for `user` (replacing any earlier one), made by `by`.
pub async fn create(pool: &SqlitePool, user: &User, by: &User) -> Result<String> {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let code = hex::encode(bytes);
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
        .bind(&user.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO password_resets (code_hash, user_id, created_by, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(digest(&code))
    .bind(&user.id)
    .bind(&by.name)
    .bind(now_ms() + RESET_HOURS * 3_600_000)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(code)
}

/// Sets a new password with a reset code; answers the user. The code is
/// spent in the same transaction, and the user's sessions end.
pub async fn redeem(pool: &SqlitePool, code: &str, password: &str) -> Result<User> {
    accounts::validate_password(password).map_err(|e| e.on_field("new_password"))?;
    let hash = accounts::hash_blocking(password.to_string()).await?;
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let user_id: Option<String> = sqlx::query_scalar(
        "DELETE FROM password_resets WHERE code_hash = $1 AND expires_at > $2 RETURNING user_id",
    )
    .bind(digest(code))
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user_id) = user_id else {
        return Err(Error::invalid(
            "code",
            "this reset link does not work: it was used already, replaced by a newer one, or is more than a day old; ask an administrator for a new one",
        ));
    };
    sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = FALSE, sessions_after = $2, updated_at = $2 WHERE id = $3",
    )
    .bind(&hash)
    .bind(now)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    accounts::find_by_id(pool, &user_id)
        .await?
        .ok_or_else(|| Error::NotFound("that user no longer exists".into()))
}
