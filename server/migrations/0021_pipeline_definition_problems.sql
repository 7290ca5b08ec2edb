-- Pipeline definitions in a repository (.nubo/pipelines/*) that the last
-- push to a branch could not read, with why: shown to whoever can read the
-- repository, replaced at each push to that branch.
CREATE TABLE pipeline_definition_problems (
    repo_name TEXT NOT NULL,
    branch TEXT NOT NULL,
    path TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    problem TEXT NOT NULL,
    pusher TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (repo_name, branch, path)
);
