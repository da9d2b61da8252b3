-- Each idempotency record keeps when it stops answering replays, so that the window is a
-- setting (`idempotency_window`) and changing it affects only the keys saved after.
-- Records saved before kept the fixed 24 hours.
ALTER TABLE idempotency_keys ADD COLUMN expire_time BIGINT NOT NULL DEFAULT 0;
UPDATE idempotency_keys SET expire_time = create_time + 86400000000;
ALTER TABLE idempotency_keys ALTER COLUMN expire_time DROP DEFAULT;
DROP INDEX idempotency_keys_by_age;
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expire_time);
