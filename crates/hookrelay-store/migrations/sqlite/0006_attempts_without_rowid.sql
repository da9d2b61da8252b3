-- An attempt is only ever found by its delivery: keyed by (delivery_id, attempt) the
-- table is one B-tree, so recording an attempt writes one entry instead of a row and
-- a separate primary-key index entry.
CREATE TABLE delivery_attempts_keyed (
    delivery_id   TEXT NOT NULL REFERENCES deliveries (id),
    attempt       INTEGER NOT NULL,
    start_time    INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    status_code   INTEGER,
    error_kind    TEXT,
    response_body TEXT,
    PRIMARY KEY (delivery_id, attempt)
) WITHOUT ROWID;

INSERT INTO delivery_attempts_keyed
    SELECT delivery_id, attempt, start_time, duration_ms, status_code, error_kind, response_body
    FROM delivery_attempts;
DROP TABLE delivery_attempts;
ALTER TABLE delivery_attempts_keyed RENAME TO delivery_attempts;
