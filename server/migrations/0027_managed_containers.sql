-- Managed targets as containers: the image a group's managed targets run
-- (on the container backend; local sandboxes when absent), and the
-- container a managed target runs in while it is started.
ALTER TABLE deploy_groups ADD COLUMN managed_image TEXT;
ALTER TABLE deploy_managed ADD COLUMN container TEXT;
