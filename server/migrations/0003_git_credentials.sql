-- HTTPS git credentials: generated user names and passwords (stored as
-- SHA-256 of a 192-bit secret), static or temporary (scoped and expiring).
CREATE TABLE git_credentials (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    temporary BOOLEAN NOT NULL,
    -- For temporary credentials: JSON array of repository names, or NULL for all.
    repos TEXT,
    can_write BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX git_credentials_user ON git_credentials (user_id);
