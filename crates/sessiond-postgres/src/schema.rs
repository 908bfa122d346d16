// @generated automatically by Diesel CLI.

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

diesel::joinable!(user_sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(sign_in_failures, user_sessions, users,);
