-- Blue/green deployment groups: two sides of managed targets, the side the
-- app URL serves, how long the other side is kept after a switch; and a
-- blue/green deployment's phase, its sides and its targets' roles.
ALTER TABLE deploy_groups ADD COLUMN blue_green_json TEXT;
ALTER TABLE deploy_groups ADD COLUMN active_side BIGINT;
ALTER TABLE deploy_groups ADD COLUMN standby_until BIGINT;
ALTER TABLE deployments ADD COLUMN phase TEXT;
ALTER TABLE deployments ADD COLUMN green_side BIGINT;
ALTER TABLE deployments ADD COLUMN blue_side BIGINT;
ALTER TABLE deployments ADD COLUMN phase_deadline BIGINT;
ALTER TABLE deployments ADD COLUMN health_checked_at BIGINT;
ALTER TABLE deployment_targets ADD COLUMN role TEXT;
