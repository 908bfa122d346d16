-- What many instances need of the database (SPEC §8, issue 12): a generation per session,
-- every refresh token a session ever retired, and a log of revocations. All three are kept
-- by the database itself, in the transaction that changes the session, so that a change
-- made by any path (the service, plain SQL, deleting a user) is recorded the same way.

-- The session's generation: 1 when created, bumped on every change of state (a refresh, its
-- end). Caches never replace a newer generation with an older one, so a late write cannot
-- roll a session back. The trigger decides, whatever an UPDATE says: a `last_activity`-only
-- write (the hot path) does not fire it at all.
ALTER TABLE user_sessions ADD COLUMN version bigint NOT NULL DEFAULT 1;

CREATE FUNCTION user_sessions_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.is_active IS DISTINCT FROM OLD.is_active
       OR NEW.refresh_token_hash IS DISTINCT FROM OLD.refresh_token_hash
       OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        NEW.version := OLD.version + 1;
    ELSE
        NEW.version := OLD.version;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER user_sessions_version
    BEFORE UPDATE ON user_sessions
    FOR EACH ROW
    WHEN (NEW.is_active IS DISTINCT FROM OLD.is_active
          OR NEW.refresh_token_hash IS DISTINCT FROM OLD.refresh_token_hash
          OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
          OR NEW.version IS DISTINCT FROM OLD.version)
    EXECUTE FUNCTION user_sessions_bump_version();

-- Every refresh token a session has rotated out (SHA-256 hashes, never a raw token), so that
-- presenting any of them is recognised as reuse however many rotations ago it was issued
-- (SPEC §2), not only the one `previous_refresh_token_hash` remembers. Kept as long as the
-- session row is.
CREATE TABLE session_retired_refresh_tokens (
    session_id uuid        NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    token_hash bytea       NOT NULL,
    retired_at timestamptz NOT NULL,
    CONSTRAINT session_retired_refresh_tokens_pkey PRIMARY KEY (session_id, token_hash),
    CONSTRAINT session_retired_refresh_tokens_token_hash_check
        CHECK (octet_length(token_hash) = 32)
);

-- The sessions of the release before this one remembered one rotated-out token each.
INSERT INTO session_retired_refresh_tokens (session_id, token_hash, retired_at)
SELECT id, previous_refresh_token_hash, coalesce(refresh_rotated_at, last_activity)
FROM user_sessions
WHERE previous_refresh_token_hash IS NOT NULL;

-- Filled on rotation, at the instant the service recorded (`refresh_rotated_at`).
CREATE FUNCTION user_sessions_retire_refresh_token() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_retired_refresh_tokens (session_id, token_hash, retired_at)
    VALUES (OLD.id, OLD.refresh_token_hash, coalesce(NEW.refresh_rotated_at, now()))
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER user_sessions_retire_refresh_token
    AFTER UPDATE ON user_sessions
    FOR EACH ROW
    WHEN (NEW.refresh_token_hash IS DISTINCT FROM OLD.refresh_token_hash)
    EXECUTE FUNCTION user_sessions_retire_refresh_token();

-- The revocation log (SPEC §8): every session end other than expiry, committed with the end
-- itself. Readers track their progress by transaction id, not by `id`: identity values are
-- handed out in one order and committed in another, so "everything after the largest id I
-- saw" can skip a row that commits late. A reader remembers `pg_snapshot_xmin` of its read's
-- snapshot and next reads `txid >= ` it: every transaction below it had finished, so its
-- rows were visible to that read. No foreign key: the entry of a deleted session must stay.
CREATE TABLE session_revocations (
    id         bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id uuid         NOT NULL,
    user_id    uuid         NOT NULL,
    -- NULL: the live row was deleted (its user was), rather than ended.
    reason     varchar(100),
    revoked_at timestamptz  NOT NULL,
    txid       xid8         NOT NULL DEFAULT pg_current_xact_id()
);

-- Reading from a position, and cleanup's pruning of old entries (SPEC §5).
CREATE INDEX idx_session_revocations_txid ON session_revocations (txid);
CREATE INDEX idx_session_revocations_revoked_at ON session_revocations (revoked_at);

-- A session ended before its time. Expiry is not logged: `expires_at` already refuses the
-- session everywhere. The NOTIFY carries nothing (readers read the log); PostgreSQL folds
-- the identical notifications of one transaction into one, delivered at commit.
CREATE FUNCTION user_sessions_log_revocation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
    VALUES (NEW.id, NEW.user_id, NEW.invalidation_reason, coalesce(NEW.invalidated_at, now()));
    PERFORM pg_notify('sessiond_revocations', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER user_sessions_log_revocation
    AFTER UPDATE ON user_sessions
    FOR EACH ROW
    WHEN (OLD.is_active AND NOT NEW.is_active
          AND NEW.invalidation_reason IS DISTINCT FROM 'expired')
    EXECUTE FUNCTION user_sessions_log_revocation();

-- A session deleted while live, by hand or through its user's deletion (ON DELETE CASCADE).
-- "Live" by the database clock with a minute's margin: a clock that runs a little ahead of
-- the service's must not let a session the service still serves vanish unannounced.
CREATE FUNCTION user_sessions_log_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_revocations (session_id, user_id, reason, revoked_at)
    VALUES (OLD.id, OLD.user_id, NULL, now());
    PERFORM pg_notify('sessiond_revocations', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER user_sessions_log_deletion
    AFTER DELETE ON user_sessions
    FOR EACH ROW
    WHEN (OLD.is_active AND OLD.expires_at > now() - interval '1 minute')
    EXECUTE FUNCTION user_sessions_log_deletion();
