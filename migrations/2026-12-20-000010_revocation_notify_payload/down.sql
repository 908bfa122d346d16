-- Notifications carry nothing again (readers read the log).
CREATE OR REPLACE FUNCTION user_sessions_log_revocation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
    VALUES (NEW.id, NEW.user_id, NEW.invalidation_reason, coalesce(NEW.invalidated_at, now()));
    PERFORM pg_notify('sessiond_revocations', '');
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION user_sessions_log_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
    VALUES (OLD.id, OLD.user_id, NULL, now());
    PERFORM pg_notify('sessiond_revocations', '');
    RETURN NULL;
END
$$;
