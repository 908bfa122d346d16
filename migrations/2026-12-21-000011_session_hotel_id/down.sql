DROP TRIGGER user_sessions_default_hotel ON user_sessions;
DROP FUNCTION user_sessions_default_hotel();
ALTER TABLE user_sessions DROP COLUMN hotel_id;
