-- A repository that follows an external git URL: polled on an interval,
-- what is new pushed in as the user who set it up.
CREATE TABLE repo_mirrors (
    repo_id TEXT PRIMARY KEY REFERENCES repos (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    interval_seconds BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    next_poll_at BIGINT NOT NULL,
    last_polled_at BIGINT,
    last_result TEXT,
    last_error TEXT
);
CREATE INDEX repo_mirrors_due ON repo_mirrors (next_poll_at);
