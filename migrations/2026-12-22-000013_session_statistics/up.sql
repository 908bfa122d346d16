-- The administrators' statistics (issue 19): sessions open by role, and per UTC hour
-- sign-ins, failed sign-ins and sessions ended by reason, read without scanning
-- `user_sessions`. The database keeps the session counts itself, in the transaction that
-- changes the sessions, so that every path (the service, cleanup, plain SQL, deleting a
-- user) is counted; failed sign-ins are counted by the service (they change no session).
--
-- "Open" is "not ended in storage": a session past `expires_at` is counted until cleanup
-- ends it as `expired` (within one cleanup interval), and that end is counted in the hour
-- it expired. Exact "live at this instant" counts would cost a scan of the sessions that
-- wait for cleanup.
--
-- **No waiting on counters.** Every transaction adds to rows of its own: `slot` is the
-- backend's process id, and one backend runs one transaction at a time, so two
-- transactions never update one counter row: the counts add no lock wait and no deadlock
-- to any write, whatever the concurrency. A reader sums the slots. Cleanup folds the
-- slots into slot 0 (skipping rows a transaction holds), which keeps the tables at a few
-- rows per backend, and forgets old hours.
--
-- **One statement, one update.** The triggers run once per statement over its transition
-- tables, not once per row: a cleanup batch that expires 20 000 sessions adds a handful of
-- grouped upserts, not 20 000.

CREATE TABLE session_stats_open (
    role     text    NOT NULL,
    -- The backend's pid; 0 for what cleanup folded.
    slot     integer NOT NULL,
    -- Sessions opened minus sessions ended (or deleted while open) in this slot; one slot
    -- may be negative, the sum over slots never is.
    sessions bigint  NOT NULL,
    CONSTRAINT session_stats_open_pkey PRIMARY KEY (role, slot)
);

CREATE TABLE session_stats_hourly (
    -- The start of a UTC hour.
    hour   timestamptz  NOT NULL,
    -- `sign_in`, `failed_sign_in`, or `ended:<invalidation reason>`.
    event  varchar(120) NOT NULL,
    slot   integer      NOT NULL,
    events bigint       NOT NULL,
    CONSTRAINT session_stats_hourly_pkey PRIMARY KEY (hour, event, slot),
    CONSTRAINT session_stats_hourly_hour_check CHECK (hour = date_trunc('hour', hour, 'UTC')),
    CONSTRAINT session_stats_hourly_event_check
        CHECK (event IN ('sign_in', 'failed_sign_in') OR event LIKE 'ended:%')
);

CREATE FUNCTION session_stats_on_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_stats_open AS s (role, slot, sessions)
    SELECT role, pg_backend_pid(), count(*) FROM inserted WHERE is_active
    GROUP BY role ORDER BY role
    ON CONFLICT (role, slot) DO UPDATE SET sessions = s.sessions + EXCLUDED.sessions;
    INSERT INTO session_stats_hourly AS h (hour, event, slot, events)
    SELECT hour, event, pg_backend_pid(), count(*) FROM (
        SELECT date_trunc('hour', created_at, 'UTC') AS hour, 'sign_in' AS event
        FROM inserted
        UNION ALL
        SELECT date_trunc('hour', invalidated_at, 'UTC'), 'ended:' || invalidation_reason
        FROM inserted WHERE NOT is_active
    ) AS e
    GROUP BY hour, event ORDER BY hour, event
    ON CONFLICT (hour, event, slot) DO UPDATE SET events = h.events + EXCLUDED.events;
    RETURN NULL;
END
$$;

-- A session that ends leaves its role's count and is counted in the hour it ended; one
-- that changes role while open (by hand: sessiond ends sessions on a role change) moves.
-- An UPDATE that changes neither (activity, refresh) joins its rows and writes nothing.
CREATE FUNCTION session_stats_on_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH changed AS MATERIALIZED (
        SELECT o.role AS old_role, o.is_active AS was_active,
               n.role AS new_role, n.is_active AS is_active,
               n.invalidated_at, n.invalidation_reason
        FROM old_rows AS o JOIN new_rows AS n USING (id)
        WHERE o.is_active IS DISTINCT FROM n.is_active
           OR (n.is_active AND o.role IS DISTINCT FROM n.role)
    ), open AS (
        INSERT INTO session_stats_open AS s (role, slot, sessions)
        SELECT role, pg_backend_pid(), sum(delta) FROM (
            SELECT old_role AS role, -1 AS delta FROM changed WHERE was_active
            UNION ALL
            SELECT new_role, 1 FROM changed WHERE is_active
        ) AS d
        GROUP BY role HAVING sum(delta) <> 0 ORDER BY role
        ON CONFLICT (role, slot) DO UPDATE SET sessions = s.sessions + EXCLUDED.sessions
    )
    INSERT INTO session_stats_hourly AS h (hour, event, slot, events)
    SELECT date_trunc('hour', invalidated_at, 'UTC'), 'ended:' || invalidation_reason,
           pg_backend_pid(), count(*)
    FROM changed WHERE was_active AND NOT is_active
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (hour, event, slot) DO UPDATE SET events = h.events + EXCLUDED.events;
    RETURN NULL;
END
$$;

-- A session deleted while open (its user was deleted, or by hand) leaves its role's count.
CREATE FUNCTION session_stats_on_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO session_stats_open AS s (role, slot, sessions)
    SELECT role, pg_backend_pid(), -count(*) FROM deleted WHERE is_active
    GROUP BY role ORDER BY role
    ON CONFLICT (role, slot) DO UPDATE SET sessions = s.sessions + EXCLUDED.sessions;
    RETURN NULL;
END
$$;

CREATE FUNCTION session_stats_on_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM session_stats_open;
    RETURN NULL;
END
$$;

-- Created before the counts are filled: each takes a lock that keeps sessions from
-- changing until this migration commits, so that no change falls between the fill and
-- the triggers.
CREATE TRIGGER user_sessions_stats_insert
    AFTER INSERT ON user_sessions
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION session_stats_on_insert();
CREATE TRIGGER user_sessions_stats_update
    AFTER UPDATE ON user_sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION session_stats_on_update();
CREATE TRIGGER user_sessions_stats_delete
    AFTER DELETE ON user_sessions
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION session_stats_on_delete();
CREATE TRIGGER user_sessions_stats_truncate
    AFTER TRUNCATE ON user_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION session_stats_on_truncate();

-- The counts so far: every open session, and the last week of hours (what sessiond keeps).
-- Failed sign-ins before this release are read from the throttle's counts of accounts and
-- known devices (one per failed sign-in), in the hour their window started.
INSERT INTO session_stats_open (role, slot, sessions)
SELECT role, 0, count(*) FROM user_sessions WHERE is_active GROUP BY role;

INSERT INTO session_stats_hourly (hour, event, slot, events)
SELECT hour, event, 0, sum(events) FROM (
    SELECT date_trunc('hour', created_at, 'UTC') AS hour, 'sign_in' AS event, 1 AS events
    FROM user_sessions
    WHERE created_at >= date_trunc('hour', now(), 'UTC') - interval '7 days'
    UNION ALL
    SELECT date_trunc('hour', invalidated_at, 'UTC'), 'ended:' || invalidation_reason, 1
    FROM user_sessions
    WHERE NOT is_active
      AND invalidated_at >= date_trunc('hour', now(), 'UTC') - interval '7 days'
    UNION ALL
    SELECT date_trunc('hour', window_start, 'UTC'), 'failed_sign_in', failures
    FROM sign_in_failures
    WHERE (key LIKE 'account:%' OR key LIKE 'device:%')
      AND window_start >= date_trunc('hour', now(), 'UTC') - interval '7 days'
) AS e
GROUP BY hour, event;
