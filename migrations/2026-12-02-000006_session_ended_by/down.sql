ALTER TABLE user_sessions
    DROP CONSTRAINT user_sessions_ended_by_admin_check,
    DROP CONSTRAINT user_sessions_ended_by_ended_check,
    DROP CONSTRAINT user_sessions_ended_by_check,
    DROP COLUMN ended_by_admin,
    DROP COLUMN ended_by;
