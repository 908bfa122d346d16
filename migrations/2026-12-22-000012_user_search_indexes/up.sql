-- The administrators' user search (issue 19): newest first, paged by (created_at, id), with
-- optional filters on the e-mail prefix, the role and the active flag. Each shape walks an
-- index in the order it answers in and stops after the page, whatever the number of users:
-- no filter, role, active flag, and both, each have one. Users are written rarely
-- (registration, an administrator's change), so four more indexes cost little.
CREATE INDEX idx_users_created ON users (created_at DESC, id DESC);
CREATE INDEX idx_users_role_created ON users (role, created_at DESC, id DESC);
CREATE INDEX idx_users_active_created ON users (is_active, created_at DESC, id DESC);
CREATE INDEX idx_users_role_active_created ON users (role, is_active, created_at DESC, id DESC);

-- An e-mail prefix (`LIKE 'prefix%'` on the stored normal form): a range of this index,
-- under any database collation (`users_email_key` follows the collation, with which
-- `LIKE` cannot use it unless it is "C"). A selective prefix reads its few matches here and
-- sorts them; for a prefix that matches many, the planner walks `idx_users_created`
-- instead and filters, stopping after the page.
CREATE INDEX idx_users_email_pattern ON users (email text_pattern_ops);
