-- SPEC §4: a session the user ended from another of their sessions is recorded as such
-- (`ended_from_other_device`), apart from a device signing itself out (`user_logout`).
ALTER TABLE user_sessions
    DROP CONSTRAINT user_sessions_invalidation_reason_check,
    ADD CONSTRAINT user_sessions_invalidation_reason_check
        CHECK (invalidation_reason IN (
            'user_logout', 'ended_from_other_device', 'user_logout_all',
            'max_sessions_exceeded', 'password_changed', 'role_changed', 'account_disabled',
            'admin_revoked', 'refresh_token_reuse', 'expired'
        ));
