-- Pipeline, stage and action state changes (CodePipeline's EventBridge
-- events), in order per pipeline (seq), listed per pipeline and sent to
-- its notification rules.
CREATE TABLE pipeline_events (
    id TEXT PRIMARY KEY,
    pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    execution_id TEXT NOT NULL,
    -- pipeline, stage or action
    scope TEXT NOT NULL,
    stage TEXT,
    action TEXT,
    -- STARTED, SUCCEEDED, FAILED, STOPPING, STOPPED, SUPERSEDED, ABANDONED
    state TEXT NOT NULL,
    -- The event as delivered (EventBridge's shape).
    event_json TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE UNIQUE INDEX pipeline_events_seq ON pipeline_events (pipeline_id, seq);
CREATE INDEX pipeline_events_execution ON pipeline_events (execution_id);

-- A pipeline's notification rule is a webhook of its source repository
-- that belongs to the pipeline (the same signing, retries and history).
ALTER TABLE webhooks ADD COLUMN pipeline_id TEXT REFERENCES pipelines (id) ON DELETE CASCADE;
