-- Retention (docs/operations/retention.md). A space's own periods, in microseconds;
-- NULL keeps the server's.
ALTER TABLE spaces ADD COLUMN retention_micros INTEGER;
ALTER TABLE spaces ADD COLUMN payload_retention_micros INTEGER;

-- Set when an event's data was removed (its payload period ended, or it was erased):
-- data is then '{}' and the API shows the event without it.
ALTER TABLE events ADD COLUMN data_remove_time INTEGER;

-- Deleting an event checks that no delivery refers to it (the foreign key), and the
-- cleaner asks whether any of its deliveries is pending: without this index each is a
-- scan of every delivery.
CREATE INDEX deliveries_by_event ON deliveries (event_id);

-- An erasure finds an object's events without reading the whole space.
CREATE INDEX events_by_object ON events (space_id, object_id);

-- The record of each erasure request: what was asked and what it did, never any data.
CREATE TABLE erasures (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    space_id             TEXT NOT NULL REFERENCES spaces (id),
    object_id            TEXT NOT NULL,
    from_time            INTEGER,
    to_time              INTEGER,
    events_erased        INTEGER NOT NULL,
    deliveries_cancelled INTEGER NOT NULL,
    create_time          INTEGER NOT NULL
);

CREATE INDEX erasures_by_space ON erasures (space_id, seq);
