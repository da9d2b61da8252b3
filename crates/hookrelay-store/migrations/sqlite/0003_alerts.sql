-- Per-webhook failure record and the alert e-mails it raises.

-- A row exists while a webhook has failures since its last success.
CREATE TABLE webhook_health (
    webhook_id           TEXT PRIMARY KEY NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    failing_since        INTEGER,
    failed_deliveries    INTEGER NOT NULL,
    last_status_code     INTEGER,
    last_error_kind      TEXT,
    last_response_body   TEXT,
    last_failing_alert   INTEGER,
    alerted              INTEGER NOT NULL
);

-- Written in the transaction that records the attempt raising it, then sent by a worker.
CREATE TABLE alerts (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    space_id          TEXT NOT NULL,
    webhook_id        TEXT NOT NULL,
    kind              TEXT NOT NULL,     -- failing | recovered | disabled
    recipients        TEXT NOT NULL,     -- JSON array of addresses
    subject           TEXT NOT NULL,
    text_body         TEXT NOT NULL,
    html_body         TEXT NOT NULL,
    status            TEXT NOT NULL,     -- pending | sent | skipped
    attempts          INTEGER NOT NULL,
    next_attempt_time INTEGER,
    lease_until       INTEGER,
    last_error        TEXT,
    create_time       INTEGER NOT NULL,
    sent_time         INTEGER
);

CREATE INDEX alerts_due ON alerts (next_attempt_time) WHERE status = 'pending';
CREATE INDEX alerts_by_webhook ON alerts (webhook_id, seq DESC);
