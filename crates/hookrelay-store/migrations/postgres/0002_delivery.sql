-- Events, their deliveries, and every attempt: the schema of
-- migrations/sqlite/0002_delivery.sql in PostgreSQL's types. Times are microseconds
-- since the epoch.

CREATE TABLE events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    space_id       TEXT NOT NULL REFERENCES spaces (id),
    name           TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    object_type    TEXT NOT NULL,
    data           TEXT NOT NULL,     -- JSON object, exactly as published (JSONB would rewrite it)
    delivery_count BIGINT NOT NULL,
    create_time    BIGINT NOT NULL
);

CREATE INDEX events_by_space ON events (space_id, seq DESC);

-- No foreign key to webhooks: a deleted webhook's delivery history stays (cancelled).
-- Several nodes claim from this table: a claim takes rows FOR UPDATE SKIP LOCKED and
-- sets lease_until; a lease that runs out makes the row claimable again.
CREATE TABLE deliveries (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    space_id          TEXT NOT NULL,
    webhook_id        TEXT NOT NULL,
    event_id          TEXT NOT NULL REFERENCES events (id),
    status            TEXT NOT NULL,     -- pending | succeeded | failed | cancelled
    attempt_count     BIGINT NOT NULL,
    next_attempt_time BIGINT,            -- set while pending
    lease_until       BIGINT,            -- set while a worker holds it
    lease_owner       TEXT,
    create_time       BIGINT NOT NULL,
    update_time       BIGINT NOT NULL
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_time, seq) WHERE status = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq DESC);
CREATE INDEX deliveries_pending_by_webhook ON deliveries (webhook_id, next_attempt_time, seq) WHERE status = 'pending';

-- response_body is BYTEA holding UTF-8: it is the start of a receiver's answer, and a
-- NUL byte in it (which TEXT refuses) must not stop the attempt from being recorded.
CREATE TABLE delivery_attempts (
    delivery_id   TEXT NOT NULL REFERENCES deliveries (id),
    attempt       BIGINT NOT NULL,
    start_time    BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    status_code   BIGINT,
    error_kind    TEXT,
    response_body BYTEA,
    PRIMARY KEY (delivery_id, attempt)
);
