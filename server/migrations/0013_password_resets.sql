-- One-time links an administrator makes for a user to choose a new
-- password. Only the SHA-256 of the code is kept; a newer link replaces an
-- older one, and using a link deletes it.
CREATE TABLE password_resets (
    code_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- Sessions that began before this time (ms since the epoch) are over: set
-- when a password is reset, so a reset signs the user out everywhere.
ALTER TABLE users ADD COLUMN sessions_after BIGINT NOT NULL DEFAULT 0;
