-- Disabled stage transitions (CodePipeline's DisableStageTransition): a
-- row holds executions before the stage it names until it is deleted
-- (enabled again). Keyed by stage name, as AWS does: a declaration edit
-- that keeps the stage keeps the transition disabled.
CREATE TABLE pipeline_transitions (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    by_user TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (pipeline_id, stage)
);
