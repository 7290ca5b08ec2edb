-- Git repositories, encrypted at rest. `wrapped_key` is the repository's
-- data key sealed by the master key; `refs_version` counts pushes and names
-- the current encrypted refs snapshot in the durable store.
CREATE TABLE repos (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    wrapped_key TEXT NOT NULL,
    refs_version BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX repos_name_ci ON repos (lower(name));

-- The encrypted packs of each repository, with the push version that added them.
CREATE TABLE repo_packs (
    repo_id TEXT NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (repo_id, name)
);

-- A value sealed by the master key, to recognise the right key at start-up.
CREATE TABLE keyring (
    id TEXT PRIMARY KEY,
    check_value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every ref update a push made, in the order of the repository's versions.
CREATE TABLE ref_updates (
    repo_id TEXT NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    ref_name TEXT NOT NULL,
    old_sha TEXT NOT NULL,
    new_sha TEXT NOT NULL,
    pusher TEXT NOT NULL,
    pushed_at BIGINT NOT NULL,
    PRIMARY KEY (repo_id, version, ref_name)
);
