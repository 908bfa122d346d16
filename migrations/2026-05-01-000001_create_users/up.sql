-- User accounts (SPEC §3). E-mail addresses are stored normalised (trimmed, lower-case) by
-- the domain; the CHECK keeps anything else from sneaking in, so the UNIQUE constraint
-- really means "one mailbox, one account".
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    role          text        NOT NULL,
    hotel_id      bigint,
    is_active     boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_lower_case CHECK (email = lower(email)),
    CONSTRAINT users_role_check
        CHECK (role IN ('guest', 'hotel_employee', 'vendor_admin', 'system_admin'))
);
