-- A pipeline build's input artifacts: earlier builds' artifacts put in
-- its source before it runs ([{"name", "build_id", "primary"}]).
ALTER TABLE builds ADD COLUMN inputs_json TEXT NOT NULL DEFAULT '[]';
