// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(Debug, diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "xid8", schema = "pg_catalog"))]
    pub struct Xid8;
}

diesel::table! {
    session_retired_refresh_tokens (session_id, token_hash) {
        session_id -> Uuid,
        token_hash -> Bytea,
        retired_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Xid8;

    session_revocations (id) {
        id -> Int8,
        session_id -> Uuid,
        user_id -> Uuid,
        #[max_length = 100]
        reason -> Nullable<Varchar>,
        revoked_at -> Timestamptz,
        txid -> Xid8,
    }
}

diesel::table! {
    session_stats_hourly (hour, event, slot) {
        hour -> Timestamptz,
        #[max_length = 120]
        event -> Varchar,
        slot -> Int4,
        events -> Int8,
    }
}

diesel::table! {
    session_stats_open (role, slot) {
        role -> Text,
        slot -> Int4,
        sessions -> Int8,
    }
}

diesel::table! {
    sign_in_failures (key, window_start) {
        key -> Text,
        window_start -> Timestamptz,
        window_end -> Timestamptz,
        failures -> Int4,
    }
}

diesel::table! {
    user_sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        device_info -> Text,
        #[max_length = 45]
        ip_address -> Nullable<Varchar>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
        last_activity -> Timestamptz,
        expires_at -> Timestamptz,
        is_active -> Bool,
        invalidated_at -> Nullable<Timestamptz>,
        #[max_length = 100]
        invalidation_reason -> Nullable<Varchar>,
        role -> Text,
        browser -> Nullable<Text>,
        device_name -> Nullable<Text>,
        refresh_token_hash -> Bytea,
        previous_refresh_token_hash -> Nullable<Bytea>,
        refresh_rotated_at -> Nullable<Timestamptz>,
        version -> Int8,
        #[max_length = 16]
        ended_by -> Nullable<Varchar>,
        ended_by_admin -> Nullable<Uuid>,
        hotel_id -> Nullable<Int8>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        hotel_id -> Nullable<Int8>,
        is_active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(session_retired_refresh_tokens -> user_sessions (session_id));
diesel::joinable!(user_sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    session_retired_refresh_tokens,
    session_revocations,
    session_stats_hourly,
    session_stats_open,
    sign_in_failures,
    user_sessions,
    users,
);
