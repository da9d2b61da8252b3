-- Spaces an operator can disable (their tokens are refused, their deliveries wait) and
-- give quotas of their own; NULL keeps the server's default. As
-- migrations/sqlite/0010_tokens_spaces_quotas.sql.
ALTER TABLE spaces
    ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN max_webhooks BIGINT,
    ADD COLUMN max_publish_rate BIGINT,
    ADD COLUMN max_fan_out BIGINT;

-- Tokens gain an id to list and revoke them by, a name, scopes, the start of the token
-- (shown so a user can tell tokens apart), a last use and an expiry. seq orders them
-- by creation and backs the list cursors. Tokens made before scopes existed could do
-- everything: they keep every scope, named "migrated"; their start was never kept.
ALTER TABLE access_tokens
    ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN id TEXT,
    ADD COLUMN name TEXT NOT NULL DEFAULT 'migrated',
    ADD COLUMN scopes TEXT NOT NULL
        DEFAULT '["webhooks:read","webhooks:write","events:publish","events:read","deliveries:read","deliveries:write","tokens:manage","events:erase"]',
    ADD COLUMN prefix TEXT NOT NULL DEFAULT '',
    ADD COLUMN last_used_time BIGINT,  -- written at most once a minute
    ADD COLUMN expire_time BIGINT;

UPDATE access_tokens SET id = 'tok-' || md5(random()::text || encode(token_digest, 'hex'));

ALTER TABLE access_tokens
    ALTER COLUMN id SET NOT NULL,
    ALTER COLUMN name DROP DEFAULT,
    ALTER COLUMN scopes DROP DEFAULT,
    ALTER COLUMN prefix DROP DEFAULT,
    ADD CONSTRAINT access_tokens_id_key UNIQUE (id);

CREATE INDEX access_tokens_by_space ON access_tokens (space_id, seq);
