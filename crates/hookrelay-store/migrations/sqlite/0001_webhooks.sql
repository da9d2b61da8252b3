-- Spaces, access tokens, webhooks and idempotency keys.
-- Times are microseconds since the Unix epoch (UTC).

CREATE TABLE spaces (
    id          TEXT PRIMARY KEY NOT NULL,
    create_time INTEGER NOT NULL
);

-- Only the SHA-256 digest of a token is kept.
CREATE TABLE access_tokens (
    token_digest BLOB PRIMARY KEY NOT NULL,
    space_id     TEXT NOT NULL REFERENCES spaces (id),
    create_time  INTEGER NOT NULL
);

-- seq orders webhooks by creation and backs the list cursors.
CREATE TABLE webhooks (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    space_id          TEXT NOT NULL REFERENCES spaces (id),
    name              TEXT NOT NULL,
    url               TEXT NOT NULL,
    enabled           INTEGER NOT NULL,
    events            TEXT NOT NULL,     -- JSON array of event names
    api_release       TEXT NOT NULL,
    verification_type TEXT NOT NULL,     -- HS256 | ES256
    secret_sealed     BLOB NOT NULL,     -- HS256 secret or ES256 private key, sealed
    public_key        TEXT,              -- ES256 only
    headers_sealed    BLOB NOT NULL,     -- JSON object, sealed: values often carry credentials
    alert_emails      TEXT NOT NULL,     -- JSON array
    metadata          TEXT NOT NULL,     -- JSON object
    create_time       INTEGER NOT NULL,
    update_time       INTEGER NOT NULL
);

CREATE INDEX webhooks_by_space ON webhooks (space_id, seq DESC);

-- The first successful response to each (space, Idempotency-Key), replayed for 24 h.
-- body is sealed like other secrets: a webhook response carries its HS256 secret.
CREATE TABLE idempotency_keys (
    space_id    TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    status      INTEGER NOT NULL,
    body        BLOB NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (space_id, key)
);

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (create_time);
