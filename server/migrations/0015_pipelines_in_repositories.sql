-- A pipeline defined in its repository (.nubo/pipelines/NAME.yml): where.
-- NULL for pipelines created through the API, the CLI or the page.
ALTER TABLE pipelines ADD COLUMN repo_name TEXT;
ALTER TABLE pipelines ADD COLUMN repo_path TEXT;
