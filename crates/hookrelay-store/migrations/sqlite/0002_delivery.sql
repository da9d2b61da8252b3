-- Events, their deliveries, and every attempt. Times are microseconds since the epoch.

CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    space_id       TEXT NOT NULL REFERENCES spaces (id),
    name           TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    object_type    TEXT NOT NULL,
    data           TEXT NOT NULL,     -- JSON object, as published
    delivery_count INTEGER NOT NULL,
    create_time    INTEGER NOT NULL
);

CREATE INDEX events_by_space ON events (space_id, seq DESC);

-- No foreign key to webhooks: a deleted webhook's delivery history stays (cancelled).
CREATE TABLE deliveries (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    space_id          TEXT NOT NULL,
    webhook_id        TEXT NOT NULL,
    event_id          TEXT NOT NULL REFERENCES events (id),
    status            TEXT NOT NULL,     -- pending | succeeded | failed | cancelled
    attempt_count     INTEGER NOT NULL,
    next_attempt_time INTEGER,           -- set while pending
    lease_until       INTEGER,           -- set while a worker holds it
    lease_owner       TEXT,
    create_time       INTEGER NOT NULL,
    update_time       INTEGER NOT NULL
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_time) WHERE status = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq DESC);
CREATE INDEX deliveries_pending_by_webhook ON deliveries (webhook_id) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    delivery_id   TEXT NOT NULL REFERENCES deliveries (id),
    attempt       INTEGER NOT NULL,
    start_time    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    status_code   INTEGER,
    error_kind    TEXT,
    response_body TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
