-- Alert e-mails per recipient address (core::alert_limit): each address's current
-- window, and the alerts held back from it until its digest is sent.

-- The recipients an alert is e-mailed to, decided once when it is first sent (JSON
-- array); NULL until then. A retried send reuses it, so a retry is not counted again.
ALTER TABLE alerts ADD COLUMN admitted_recipients TEXT;

-- One row per address (lowercased), overwritten when a new window opens.
CREATE TABLE alert_email_windows (
    recipient    TEXT PRIMARY KEY NOT NULL,
    window_start INTEGER NOT NULL,
    sent         INTEGER NOT NULL
);

-- An alert held back from an address, until the digest listing it is sent (then
-- deleted). lease_until is set while a node sends the digest, or to when a failed
-- digest is tried again.
CREATE TABLE alert_email_holds (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient   TEXT NOT NULL,
    alert_id    TEXT NOT NULL,
    webhook_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    digest_due  INTEGER NOT NULL,
    lease_until INTEGER
);

CREATE INDEX alert_email_holds_due ON alert_email_holds (digest_due);
CREATE INDEX alert_email_holds_by_recipient ON alert_email_holds (recipient, digest_due);
