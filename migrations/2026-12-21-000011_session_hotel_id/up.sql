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
