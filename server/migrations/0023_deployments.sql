-- Deployments (CodeDeploy): agent tokens, the targets that registered
-- with them, applications, deployment groups, custom configurations, and
-- each deployment's state machine: its targets and one command per target
-- and lifecycle event (the agent's unit of work).
CREATE TABLE deploy_agent_tokens (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    -- SHA-256 of the token (hex); the token itself is shown once.
    token_hash TEXT NOT NULL UNIQUE,
    -- Whose applications may deploy to the targets of this token.
    owner_id TEXT NOT NULL REFERENCES users (id),
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE deploy_targets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_id TEXT NOT NULL REFERENCES deploy_agent_tokens (id),
    tags_json TEXT NOT NULL DEFAULT '{}',
    agent_version TEXT NOT NULL DEFAULT '',
    registered_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- The revision of the last deployment that succeeded on it.
    revision TEXT
);
CREATE UNIQUE INDEX deploy_targets_name ON deploy_targets (lower(name));

CREATE TABLE deploy_configs (
    name TEXT PRIMARY KEY,
    -- HOST_COUNT or FLEET_PERCENT: the minimum healthy targets.
    kind TEXT NOT NULL,
    value BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);

CREATE TABLE deploy_applications (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX deploy_applications_name ON deploy_applications (lower(name));

CREATE TABLE deploy_groups (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES deploy_applications (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    tags_json TEXT NOT NULL DEFAULT '{}',
    auto_rollback BOOLEAN NOT NULL DEFAULT FALSE,
    -- A deployment while another runs: waits (TRUE) or is refused.
    queue BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX deploy_groups_name ON deploy_groups (app_id, lower(name));

CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL REFERENCES deploy_groups (id) ON DELETE CASCADE,
    -- Created, Queued, InProgress, Succeeded, Failed or Stopped.
    status TEXT NOT NULL,
    -- {"repo", "commit"} or {"build_id"}.
    revision_json TEXT NOT NULL,
    revision_label TEXT NOT NULL,
    bundle_sha256 TEXT NOT NULL,
    bundle_size BIGINT NOT NULL,
    -- "user", "codeDeployRollback" or "pipeline".
    creator TEXT NOT NULL,
    created_by TEXT REFERENCES users (id),
    rollback_of TEXT,
    rolled_back_by TEXT,
    -- A pipeline Deploy action this deployment runs for: execution and action.
    pipeline_execution_id TEXT,
    pipeline_action TEXT,
    message TEXT,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX deployments_group ON deployments (group_id, created_at);
CREATE INDEX deployments_status ON deployments (status);

CREATE TABLE deployment_targets (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES deploy_targets (id),
    position BIGINT NOT NULL,
    -- Pending, InProgress, Succeeded, Failed or Skipped.
    status TEXT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (deployment_id, target_id)
);

CREATE TABLE deployment_commands (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES deploy_targets (id),
    event TEXT NOT NULL,
    position BIGINT NOT NULL,
    -- Pending, Dispatched (sent, not acknowledged), InProgress, Succeeded,
    -- Failed or Skipped.
    status TEXT NOT NULL,
    error_code BIGINT,
    script_name TEXT,
    message TEXT,
    log_tail TEXT,
    dispatched_at BIGINT,
    started_at BIGINT,
    finished_at BIGINT
);
CREATE INDEX deployment_commands_target ON deployment_commands (target_id, status);
CREATE INDEX deployment_commands_deployment ON deployment_commands (deployment_id, target_id, position);
