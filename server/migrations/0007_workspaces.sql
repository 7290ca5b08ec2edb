-- Workspaces: per-user development environments. Files live under
-- <data_dir>/workspaces/<id>/; the agent that serves them is found through
-- its socket there (and, for containers, the container id).
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    repo_id TEXT REFERENCES repos (id) ON DELETE SET NULL,
    repo_name TEXT,
    backend TEXT NOT NULL,
    image TEXT,
    state TEXT NOT NULL,
    error TEXT,
    container_id TEXT,
    agent_pid BIGINT,
    idle_timeout_seconds BIGINT NOT NULL,
    preview_shared BOOLEAN NOT NULL DEFAULT FALSE,
    credential_id TEXT,
    credential_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    stopped_at BIGINT
);
CREATE UNIQUE INDEX workspaces_owner_name ON workspaces (owner_id, lower(name));
