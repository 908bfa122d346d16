DROP INDEX idx_users_email_pattern;
DROP INDEX idx_users_role_active_created;
DROP INDEX idx_users_active_created;
DROP INDEX idx_users_role_created;
DROP INDEX idx_users_created;
