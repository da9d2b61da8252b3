-- Spaces an operator can disable (their tokens are refused, their deliveries wait) and
-- give quotas of their own; NULL keeps the server's default.
ALTER TABLE spaces ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spaces ADD COLUMN max_webhooks INTEGER;
ALTER TABLE spaces ADD COLUMN max_publish_rate INTEGER;
ALTER TABLE spaces ADD COLUMN max_fan_out INTEGER;

-- Tokens gain an id to list and revoke them by, a name, scopes, the start of the token
-- (shown so a user can tell tokens apart), a last use and an expiry. seq orders them
-- by creation and backs the list cursors. Tokens made before scopes existed could do
-- everything: they keep every scope, named "migrated"; their start was never kept.
CREATE TABLE access_tokens_scoped (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    token_digest   BLOB NOT NULL UNIQUE,
    space_id       TEXT NOT NULL REFERENCES spaces (id),
    name           TEXT NOT NULL,
    scopes         TEXT NOT NULL,     -- JSON array of scope names
    prefix         TEXT NOT NULL,
    create_time    INTEGER NOT NULL,
    last_used_time INTEGER,           -- written at most once a minute
    expire_time    INTEGER
);

INSERT INTO access_tokens_scoped (id, token_digest, space_id, name, scopes, prefix, create_time)
SELECT 'tok-' || lower(hex(randomblob(12))), token_digest, space_id, 'migrated',
       '["webhooks:read","webhooks:write","events:publish","events:read","deliveries:read","deliveries:write","tokens:manage","events:erase"]',
       '', create_time
FROM access_tokens
ORDER BY create_time;

DROP TABLE access_tokens;
ALTER TABLE access_tokens_scoped RENAME TO access_tokens;

CREATE INDEX access_tokens_by_space ON access_tokens (space_id, seq);

-- A wide fan-out being written: its event is stored with its first deliveries, the rest
-- follow in separate writes so other spaces' writes are not held behind it. Claims
-- skip the deliveries of an event listed here; the write that stores the last ones
-- removes the row. webhooks (a JSON array of ids) and written (how many of them have
-- their delivery) let the next start finish a fan-out a crash interrupted.
CREATE TABLE staged_events (
    event_id TEXT PRIMARY KEY NOT NULL REFERENCES events (id),
    webhooks TEXT NOT NULL,
    written  INTEGER NOT NULL
) WITHOUT ROWID;
