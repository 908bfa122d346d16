-- A session carries its user's hotel (issue 17), copied at sign-in like its role, so that
-- forward-auth answers `X-Session-Hotel-Id` from the cached session without reading the
-- user. An account's hotel is set when it is created and never changes (SPEC §4 has no way
-- to change it), so the copy cannot go stale. Sessions opened before this column get it
-- from their users.
ALTER TABLE user_sessions ADD COLUMN hotel_id bigint;

UPDATE user_sessions AS s
SET hotel_id = u.hotel_id
FROM users AS u
WHERE u.id = s.user_id AND u.hotel_id IS NOT NULL;

-- A session inserted without it (by the previous release, during a rolling deploy) still
-- gets it.
CREATE FUNCTION user_sessions_default_hotel() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.hotel_id IS NULL THEN
        SELECT hotel_id INTO NEW.hotel_id FROM users WHERE id = NEW.user_id;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER user_sessions_default_hotel
    BEFORE INSERT ON user_sessions
    FOR EACH ROW EXECUTE FUNCTION user_sessions_default_hotel();
