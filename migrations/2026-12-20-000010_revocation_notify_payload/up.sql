-- The notification of a revocation names it: "<session id> <user id> <reason or -> <revoked
-- at, unix microseconds>". A listening instance drops the session from its caches on
-- receipt, one log read sooner; the log stays the record, read after every notification
-- (SPEC §8). Distinct payloads are not folded: one notification per ended session.
CREATE OR REPLACE FUNCTION user_sessions_log_revocation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := coalesce(NEW.invalidated_at, now());
BEGIN
    INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
    VALUES (NEW.id, NEW.user_id, NEW.invalidation_reason, at);
    PERFORM pg_notify('sessiond_revocations', concat_ws(' ',
        NEW.id::text, NEW.user_id::text, coalesce(NEW.invalidation_reason, '-'),
        (extract(epoch FROM at) * 1000000)::bigint::text));
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION user_sessions_log_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz := now();
BEGIN
    INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
    VALUES (OLD.id, OLD.user_id, NULL, at);
    PERFORM pg_notify('sessiond_revocations', concat_ws(' ',
        OLD.id::text, OLD.user_id::text, '-',
        (extract(epoch FROM at) * 1000000)::bigint::text));
    RETURN NULL;
END
$$;
