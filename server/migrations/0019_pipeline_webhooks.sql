-- A pipeline's incoming webhook: a signed POST starts an execution. The
-- signing secret is sealed by the master key; executions it starts run as
-- the user who set it up.
CREATE TABLE pipeline_webhooks (
    pipeline_id TEXT PRIMARY KEY REFERENCES pipelines (id) ON DELETE CASCADE,
    sealed_secret TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

-- Calls that named a delivery id (X-Nubo-Delivery): a repeated one is
-- answered with the execution it started, not a second one.
CREATE TABLE pipeline_webhook_calls (
    pipeline_id TEXT NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    delivery TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (pipeline_id, delivery)
);
