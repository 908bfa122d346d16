-- Cleanup (SPEC §5) with work proportional to the rows it changes. Each batch walks one of
-- these partial indexes from its oldest entry and stops after the batch: it never visits a
-- live session that is not yet due, nor the (much larger) ended history. The seed's
-- `idx_sessions_expires` covers ended sessions too, so a scan of it for "active and
-- expired" would wade through every ended session whose `expires_at` has passed.
CREATE INDEX idx_sessions_expiring ON user_sessions (expires_at) WHERE is_active;
CREATE INDEX idx_sessions_ended_at ON user_sessions (invalidated_at) WHERE NOT is_active;
