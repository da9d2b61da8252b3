-- Bulk recoveries, as migrations/sqlite/0016_recoveries.sql.
CREATE TABLE recoveries (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    space_id     TEXT NOT NULL REFERENCES spaces (id),
    webhook_id   TEXT NOT NULL,
    since_time   BIGINT NOT NULL,
    until_time   BIGINT NOT NULL,
    statuses     TEXT NOT NULL,      -- comma-separated delivery statuses
    status       TEXT NOT NULL,      -- running | completed | cancelled
    end_seq      BIGINT NOT NULL,
    cursor_seq   BIGINT NOT NULL,
    matched      BIGINT NOT NULL,
    requeued     BIGINT NOT NULL,
    skipped      BIGINT NOT NULL,
    lease_until  BIGINT,
    lease_owner  TEXT,
    create_time  BIGINT NOT NULL,
    finish_time  BIGINT
);

CREATE INDEX recoveries_by_webhook ON recoveries (webhook_id, seq);
CREATE INDEX recoveries_running ON recoveries (seq) WHERE status = 'running';
