-- Pipelines (CodePipeline declarations, as JSON) and their executions: a
-- state machine per execution in these rows; the engine's ticks move it.
CREATE TABLE pipelines (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    definition_json TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX pipelines_name_ci ON pipelines (lower(name));

CREATE TABLE pipeline_executions (
    id TEXT PRIMARY KEY,
    pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    -- Start order within the pipeline (1, 2, ...).
    number BIGINT NOT NULL,
    -- InProgress, Stopping, Stopped, Succeeded, Superseded or Failed.
    status TEXT NOT NULL,
    trigger_json TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    branch TEXT NOT NULL,
    -- The declaration this execution runs (a later edit does not change it).
    definition_json TEXT NOT NULL,
    -- Output variables by namespace: {"ns": {"key": "value"}}.
    variables_json TEXT NOT NULL DEFAULT '{}',
    -- The stage it is in (entered) or waiting to enter.
    stage_index BIGINT NOT NULL DEFAULT 0,
    entered BOOLEAN NOT NULL DEFAULT FALSE,
    -- Why it is waiting, or why it ended as it did.
    waiting TEXT,
    reason TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE UNIQUE INDEX pipeline_executions_number ON pipeline_executions (pipeline_id, number);
CREATE INDEX pipeline_executions_status ON pipeline_executions (status);

CREATE TABLE pipeline_actions (
    execution_id TEXT NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    stage_index BIGINT NOT NULL,
    action_index BIGINT NOT NULL,
    -- NULL until reached; InProgress, Succeeded, Failed, Stopped or Abandoned.
    status TEXT,
    build_id TEXT,
    summary TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (execution_id, stage_index, action_index)
);

-- An approval's answer: who, what, why.
CREATE TABLE pipeline_approvals (
    execution_id TEXT NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    stage_index BIGINT NOT NULL,
    action_index BIGINT NOT NULL,
    result TEXT NOT NULL,
    comment TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (execution_id, stage_index, action_index)
);
