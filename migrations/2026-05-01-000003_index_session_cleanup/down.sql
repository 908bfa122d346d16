DROP INDEX idx_sessions_ended_at;
DROP INDEX idx_sessions_expiring;
