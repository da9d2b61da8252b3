-- Key ids and rotation with overlap: the schema of
-- migrations/sqlite/0015_signing_key_rotation.sql in PostgreSQL's types.
-- Keys made before this migration get a random id here.

ALTER TABLE webhooks ADD COLUMN key_id TEXT;
UPDATE webhooks SET key_id = 'key-' || md5(random()::text || id || clock_timestamp()::text) WHERE key_id IS NULL;
ALTER TABLE webhooks ALTER COLUMN key_id SET NOT NULL;

ALTER TABLE webhooks ADD COLUMN previous_key_id TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_sealed BYTEA;  -- sealed, bound to the row as "<id>/previous-key"
ALTER TABLE webhooks ADD COLUMN previous_public_key TEXT;      -- ES256 only
ALTER TABLE webhooks ADD COLUMN previous_until BIGINT;         -- the overlap's end, microseconds
