-- Key ids and rotation with overlap: each webhook's current key has an id, and a
-- rotation keeps the retired key (sealed like the current one) until previous_until.
-- Keys made before this migration get a random id here.

ALTER TABLE webhooks ADD COLUMN key_id TEXT;
UPDATE webhooks SET key_id = 'key-' || lower(hex(randomblob(16))) WHERE key_id IS NULL;

ALTER TABLE webhooks ADD COLUMN previous_key_id TEXT;
ALTER TABLE webhooks ADD COLUMN previous_secret_sealed BLOB;  -- sealed, bound to the row as "<id>/previous-key"
ALTER TABLE webhooks ADD COLUMN previous_public_key TEXT;     -- ES256 only
ALTER TABLE webhooks ADD COLUMN previous_until INTEGER;       -- the overlap's end, microseconds
