-- IAM-style access: groups, policy documents attached to users and groups,
-- and the append-only audit log of every allow/deny decision.
CREATE TABLE user_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_groups_name_ci ON user_groups (lower(name));

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);

-- principal_kind is 'user' or 'group'.
CREATE TABLE policies (
    principal_kind TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (principal_kind, principal_id, name)
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    action TEXT NOT NULL,
    repo TEXT NOT NULL,
    ref_name TEXT,
    allowed BOOLEAN NOT NULL,
    basis TEXT NOT NULL,
    statement TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
