-- Batch builds: one row per batch (its plan, as the buildspec's batch:
-- section read when it was started), its builds in `builds` with the
-- batch's id, their identifier and their own settings. A build that waits
-- for its dependencies is PENDING (not claimed by the queue).
CREATE TABLE build_batches (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES build_projects (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    kind TEXT NOT NULL,
    plan_json TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_sha TEXT,
    initiator TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT,
    reason TEXT,
    stop_requested BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX build_batches_project ON build_batches (project_id, created_at);
ALTER TABLE builds ADD COLUMN batch_id TEXT REFERENCES build_batches (id) ON DELETE CASCADE;
ALTER TABLE builds ADD COLUMN identifier TEXT;
ALTER TABLE builds ADD COLUMN child_json TEXT;
CREATE INDEX builds_batch ON builds (batch_id);
