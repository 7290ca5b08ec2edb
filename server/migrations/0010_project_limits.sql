-- Resource limits of a project's container builds (NULL: the server's).
ALTER TABLE build_projects ADD COLUMN memory_mb BIGINT;
ALTER TABLE build_projects ADD COLUMN cpus DOUBLE PRECISION;
ALTER TABLE build_projects ADD COLUMN pids BIGINT;
