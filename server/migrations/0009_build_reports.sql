-- Test reports of a build (JUnit report groups), as JSON.
ALTER TABLE builds ADD COLUMN reports_json TEXT NOT NULL DEFAULT '[]';
