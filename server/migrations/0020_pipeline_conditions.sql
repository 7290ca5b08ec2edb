-- What a stage's conditions did in an execution: skipped by beforeEntry,
-- the automatic retry used by onFailure, and what the rules found.
CREATE TABLE pipeline_stage_notes (
    execution_id TEXT NOT NULL REFERENCES pipeline_executions (id) ON DELETE CASCADE,
    stage_index BIGINT NOT NULL,
    skipped BOOLEAN NOT NULL DEFAULT FALSE,
    auto_retries BIGINT NOT NULL DEFAULT 0,
    note TEXT,
    PRIMARY KEY (execution_id, stage_index)
);

-- A rollback re-runs a stage with an earlier execution's commit, variables
-- and artifacts: that execution, and the stage it starts at.
ALTER TABLE pipeline_executions ADD COLUMN based_on TEXT;
ALTER TABLE pipeline_executions ADD COLUMN first_stage BIGINT NOT NULL DEFAULT 0;
