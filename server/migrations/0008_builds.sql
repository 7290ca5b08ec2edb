-- Build projects and builds (CodeBuild's part), and the stores builds read
-- secrets from. The builds table is also the queue: a build is claimed by
-- moving it from QUEUED to IN_PROGRESS in one statement.
CREATE TABLE build_projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    repo_id TEXT NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    branch TEXT NOT NULL,
    buildspec_path TEXT NOT NULL,
    inline_buildspec TEXT,
    image TEXT,
    env_json TEXT NOT NULL,
    timeout_minutes BIGINT NOT NULL,
    next_number BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX build_projects_name ON build_projects (lower(name));

CREATE TABLE builds (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES build_projects (id) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    status TEXT NOT NULL,
    current_phase TEXT,
    phases_json TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_sha TEXT,
    initiator TEXT NOT NULL,
    env_json TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    exported_json TEXT NOT NULL,
    artifacts BIGINT NOT NULL DEFAULT 0,
    reason TEXT
);
CREATE INDEX builds_project ON builds (project_id, number);
CREATE INDEX builds_status ON builds (status, queued_at);

-- Parameters (the parameter store) and secrets (the secrets manager), sealed
-- by the master key with their kind and name as associated data.
CREATE TABLE stored_values (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    value_sealed TEXT NOT NULL,
    created_by TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
