-- Sessions (SPEC §3): the seed's columns and indexes, plus the role at sign-in, the parsed
-- browser, a user-given device name and the refresh-token rotation state (SHA-256 hashes
-- only, never a raw token).
CREATE TABLE user_sessions (
    id                          uuid         PRIMARY KEY,
    user_id                     uuid         NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_info                 text         NOT NULL,
    ip_address                  varchar(45),
    user_agent                  text,
    created_at                  timestamptz  NOT NULL,
    last_activity               timestamptz  NOT NULL,
    expires_at                  timestamptz  NOT NULL,
    is_active                   boolean      NOT NULL DEFAULT true,
    invalidated_at              timestamptz,
    invalidation_reason         varchar(100),
    role                        text         NOT NULL,
    browser                     text,
    device_name                 text,
    refresh_token_hash          bytea        NOT NULL,
    previous_refresh_token_hash bytea,
    refresh_rotated_at          timestamptz,
    CONSTRAINT user_sessions_role_check
        CHECK (role IN ('guest', 'hotel_employee', 'vendor_admin', 'system_admin')),
    CONSTRAINT user_sessions_invalidation_reason_check
        CHECK (invalidation_reason IN (
            'user_logout', 'user_logout_all', 'max_sessions_exceeded', 'password_changed',
            'role_changed', 'account_disabled', 'admin_revoked', 'refresh_token_reuse',
            'expired'
        )),
    -- One lifecycle, three columns: active, or ended at an instant for a reason.
    CONSTRAINT user_sessions_lifecycle_check
        CHECK (
            (is_active AND invalidated_at IS NULL AND invalidation_reason IS NULL)
            OR (NOT is_active AND invalidated_at IS NOT NULL AND invalidation_reason IS NOT NULL)
        ),
    CONSTRAINT user_sessions_refresh_token_hash_check
        CHECK (octet_length(refresh_token_hash) = 32),
    CONSTRAINT user_sessions_previous_refresh_token_hash_check
        CHECK (octet_length(previous_refresh_token_hash) = 32)
);

-- The seed's indexes.
CREATE INDEX idx_sessions_user ON user_sessions (user_id);
CREATE INDEX idx_sessions_expires ON user_sessions (expires_at);
CREATE INDEX idx_sessions_active ON user_sessions (is_active);

-- The max-sessions rule and the device list: a user's active sessions by activity.
CREATE INDEX idx_sessions_user_live ON user_sessions (user_id, last_activity DESC)
    WHERE is_active;
-- The history: a user's ended sessions, newest first.
CREATE INDEX idx_sessions_user_ended ON user_sessions (user_id, invalidated_at DESC)
    WHERE NOT is_active;
