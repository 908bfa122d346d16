-- Failed sign-ins per key (an account or a client address) in fixed windows: the sign-in
-- throttle's counters (SPEC §4 `rate_limited`). The domain picks keys and windows; a row is
-- one key's count in one window. Rows whose window has ended are deleted by the cleanup
-- pass, in batches, through `idx_sign_in_failures_window_end`, so the table stays bounded
-- by the keys of the current windows.
CREATE TABLE sign_in_failures (
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    failures     integer     NOT NULL,
    CONSTRAINT sign_in_failures_pkey PRIMARY KEY (key, window_start),
    CONSTRAINT sign_in_failures_window_check CHECK (window_end > window_start),
    CONSTRAINT sign_in_failures_failures_check CHECK (failures > 0)
);

CREATE INDEX idx_sign_in_failures_window_end ON sign_in_failures (window_end);
