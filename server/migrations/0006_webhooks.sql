-- Repository triggers (webhooks) and their delivery history. The signing
-- secret is stored sealed by the master key.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    repo_id TEXT NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    -- JSON array of: all, createReference, updateReference, deleteReference
    events TEXT NOT NULL,
    -- JSON array of branch names or globs; empty for all refs
    branches TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhooks_repo ON webhooks (repo_id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    -- pending, delivered or failed
    state TEXT NOT NULL,
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
