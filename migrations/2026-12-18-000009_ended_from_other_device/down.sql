-- Sessions ended from another device read as signed out, as they did before.
UPDATE user_sessions SET invalidation_reason = 'user_logout'
    WHERE invalidation_reason = 'ended_from_other_device';
UPDATE session_revocations SET reason = 'user_logout'
    WHERE reason = 'ended_from_other_device';
ALTER TABLE user_sessions
    DROP CONSTRAINT user_sessions_invalidation_reason_check,
    ADD CONSTRAINT user_sessions_invalidation_reason_check
        CHECK (invalidation_reason IN (
            'user_logout', 'user_logout_all', 'max_sessions_exceeded', 'password_changed',
            'role_changed', 'account_disabled', 'admin_revoked', 'refresh_token_reuse',
            'expired'
        ));
