-- Spaces, access tokens, webhooks and idempotency keys: the schema of
-- migrations/sqlite/0001_webhooks.sql in PostgreSQL's types.
-- Times are microseconds since the Unix epoch (UTC), as BIGINT like SQLite's INTEGER;
-- every integer is BIGINT so both backends bind and decode the same i64 values.

CREATE TABLE spaces (
    id          TEXT PRIMARY KEY,
    create_time BIGINT NOT NULL
);

-- Only the SHA-256 digest of a token is kept.
CREATE TABLE access_tokens (
    token_digest BYTEA PRIMARY KEY,
    space_id     TEXT NOT NULL REFERENCES spaces (id),
    create_time  BIGINT NOT NULL
);

-- seq orders webhooks by creation and backs the list cursors.
CREATE TABLE webhooks (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    space_id          TEXT NOT NULL REFERENCES spaces (id),
    name              TEXT NOT NULL,
    url               TEXT NOT NULL,
    enabled           BOOLEAN NOT NULL,
    events            JSONB NOT NULL,    -- array of event names; JSONB so publishing can match with @>
    api_release       TEXT NOT NULL,
    verification_type TEXT NOT NULL,     -- HS256 | ES256
    secret_sealed     BYTEA NOT NULL,    -- HS256 secret or ES256 private key, sealed
    public_key        TEXT,              -- ES256 only
    headers_sealed    BYTEA NOT NULL,    -- JSON object, sealed: values often carry credentials
    alert_emails      TEXT NOT NULL,     -- JSON array
    metadata          TEXT NOT NULL,     -- JSON object, as text: JSONB would reorder keys and renormalise numbers
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL
);

CREATE INDEX webhooks_by_space ON webhooks (space_id, seq DESC);
-- Publishing looks up a space's webhooks subscribed to one name (events @> '["name"]').
CREATE INDEX webhooks_by_event ON webhooks USING GIN (events jsonb_path_ops);

-- The first successful response to each (space, Idempotency-Key), replayed for 24 h.
-- body is sealed like other secrets: a webhook response carries its HS256 secret.
CREATE TABLE idempotency_keys (
    space_id    TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BYTEA NOT NULL,
    status      BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    create_time BIGINT NOT NULL,
    PRIMARY KEY (space_id, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (create_time);
