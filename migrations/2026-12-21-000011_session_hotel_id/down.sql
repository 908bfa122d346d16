ALTER TABLE user_sessions DROP COLUMN hotel_id;
