-- Whether a pipeline's Deploy action has been told how its deployment ended.
ALTER TABLE deployments ADD COLUMN pipeline_reported BOOLEAN NOT NULL DEFAULT FALSE;
