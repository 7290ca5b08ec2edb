-- Managed targets: deployment targets Nubo starts itself for a group, and
-- the HTTP port a group's app listens on (served at its app URL).
ALTER TABLE deploy_groups ADD COLUMN managed_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deploy_groups ADD COLUMN app_port BIGINT;
CREATE TABLE deploy_managed (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES deploy_groups (id) ON DELETE CASCADE,
    slot BIGINT NOT NULL,
    name TEXT NOT NULL,
    token_id TEXT NOT NULL REFERENCES deploy_agent_tokens (id),
    pid BIGINT,
    started_at BIGINT NOT NULL,
    UNIQUE (group_id, slot)
);
