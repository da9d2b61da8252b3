-- Alert e-mails per recipient address (core::alert_limit): the schema of
-- migrations/sqlite/0012_alert_email_limits.sql in PostgreSQL's types. Times are
-- microseconds since the epoch.

-- The recipients an alert is e-mailed to, decided once when it is first sent (JSON
-- array); NULL until then. A retried send reuses it, so a retry is not counted again.
ALTER TABLE alerts ADD COLUMN admitted_recipients TEXT;

-- One row per address (lowercased), overwritten when a new window opens. Nodes admit
-- alerts for an address holding its row lock, so the count holds across a cluster.
CREATE TABLE alert_email_windows (
    recipient    TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    sent         BIGINT NOT NULL
);

-- An alert held back from an address, until the digest listing it is sent (then
-- deleted). lease_until is set while a node sends the digest, or to when a failed
-- digest is tried again.
CREATE TABLE alert_email_holds (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient   TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    webhook_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    digest_due  BIGINT NOT NULL,
    lease_until BIGINT
);

CREATE INDEX alert_email_holds_due ON alert_email_holds (digest_due);
CREATE INDEX alert_email_holds_by_recipient ON alert_email_holds (recipient, digest_due);
