-- Per-webhook failure record and the alert e-mails it raises: the schema of
-- migrations/sqlite/0003_alerts.sql in PostgreSQL's types. Times are microseconds
-- since the epoch.
--
-- Text that quotes a receiver's response (the last response body, and the e-mail
-- bodies that show its first lines) is BYTEA holding UTF-8, as in delivery_attempts:
-- a NUL byte in an answer, which TEXT refuses, must not stop the attempt from being
-- recorded.

-- A row exists while a webhook has failures since its last success. Written only by
-- transactions holding the webhook's row lock, so nodes never overwrite each other.
CREATE TABLE webhook_health (
    webhook_id           TEXT PRIMARY KEY,
    consecutive_failures BIGINT NOT NULL,
    failing_since        BIGINT,
    failed_deliveries    BIGINT NOT NULL,
    last_status_code     BIGINT,
    last_error_kind      TEXT,
    last_response_body   BYTEA,
    last_failing_alert   BIGINT,
    alerted              BOOLEAN NOT NULL
);

-- Written in the transaction that records the attempt raising it, then sent by any
-- node's alerter: a claim takes rows FOR UPDATE SKIP LOCKED and sets lease_until.
CREATE TABLE alerts (
    seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    space_id          TEXT NOT NULL,
    webhook_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,     -- failing | recovered | disabled
    recipients        TEXT NOT NULL,     -- JSON array of addresses
    subject           TEXT NOT NULL,
    text_body         BYTEA NOT NULL,    -- UTF-8
    html_body         BYTEA NOT NULL,    -- UTF-8
    status            TEXT NOT NULL,     -- pending | sent | skipped
    attempts          BIGINT NOT NULL,
    next_attempt_time BIGINT,
    lease_until       BIGINT,
    last_error        TEXT,
    create_time       BIGINT NOT NULL,
    sent_time         BIGINT
);

CREATE INDEX alerts_due ON alerts (next_attempt_time, seq) WHERE status = 'pending';
CREATE INDEX alerts_by_webhook ON alerts (webhook_id, seq DESC);
