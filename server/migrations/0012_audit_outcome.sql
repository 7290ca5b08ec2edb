-- What became of an allowed request: an action can be allowed and still
-- fail (a repository name that is taken). NULL: not recorded (older rows,
-- and decisions no action follows, such as git's ref checks).
ALTER TABLE audit_log ADD COLUMN outcome TEXT;
