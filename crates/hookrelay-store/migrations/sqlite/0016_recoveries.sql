-- Bulk recoveries (POST /v1/webhooks/{id}/recoveries): what was asked, how far the walk
-- along the webhook's deliveries got (cursor_seq, up to end_seq, the last delivery when
-- it was asked for) and what it did, advanced with each batch's changes in one
-- transaction; the lease keeps a recovery to one runner at a time.
CREATE TABLE recoveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    space_id     TEXT NOT NULL REFERENCES spaces (id),
    webhook_id   TEXT NOT NULL,
    since_time   INTEGER NOT NULL,
    until_time   INTEGER NOT NULL,
    statuses     TEXT NOT NULL,      -- comma-separated delivery statuses
    status       TEXT NOT NULL,      -- running | completed | cancelled
    end_seq      INTEGER NOT NULL,
    cursor_seq   INTEGER NOT NULL,
    matched      INTEGER NOT NULL,
    requeued     INTEGER NOT NULL,
    skipped      INTEGER NOT NULL,
    lease_until  INTEGER,
    lease_owner  TEXT,
    create_time  INTEGER NOT NULL,
    finish_time  INTEGER
);

CREATE INDEX recoveries_by_webhook ON recoveries (webhook_id, seq);
CREATE INDEX recoveries_running ON recoveries (seq) WHERE status = 'running';
