-- Git repositories. The bare repository lives at <data_dir>/repos/<id>.git.
CREATE TABLE repos (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX repos_name_ci ON repos (lower(name));
