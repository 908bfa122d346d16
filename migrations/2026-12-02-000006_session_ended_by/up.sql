-- Who ended a session (issue 12): its own user, an administrator (which one), or sessiond
-- itself (expiry, a full session list, a reused refresh token). The history keeps it, so
-- that a user and an administrator can tell who signed a device out. Sessions that ended
-- before this column, or by hand in SQL, have none. No foreign key on the administrator:
-- the record outlives the administrator's account.
ALTER TABLE user_sessions
    ADD COLUMN ended_by varchar(16),
    ADD COLUMN ended_by_admin uuid,
    ADD CONSTRAINT user_sessions_ended_by_check
        CHECK (ended_by IN ('user', 'admin', 'system')),
    -- Only an ended session says who ended it...
    ADD CONSTRAINT user_sessions_ended_by_ended_check
        CHECK (NOT (is_active AND ended_by IS NOT NULL)),
    -- ...and names an administrator exactly when one did.
    ADD CONSTRAINT user_sessions_ended_by_admin_check
        CHECK ((ended_by IS NOT DISTINCT FROM 'admin') = (ended_by_admin IS NOT NULL));
