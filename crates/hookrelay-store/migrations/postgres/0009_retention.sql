-- Retention (docs/operations/retention.md), as migrations/sqlite/0011_retention.sql.
ALTER TABLE spaces
    ADD COLUMN retention_micros BIGINT,
    ADD COLUMN payload_retention_micros BIGINT;

-- Set when an event's data was removed (expired or erased): data is then '{}'.
ALTER TABLE events ADD COLUMN data_remove_time BIGINT;

-- Deleting an event checks the foreign key from deliveries, and the cleaner asks
-- whether any of its deliveries is pending: both need deliveries by event.
CREATE INDEX deliveries_by_event ON deliveries (event_id);

-- An erasure finds an object's events without reading the whole space.
CREATE INDEX events_by_object ON events (space_id, object_id);

CREATE TABLE erasures (
    seq                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    space_id             TEXT NOT NULL REFERENCES spaces (id),
    object_id            TEXT NOT NULL,
    from_time            BIGINT,
    to_time              BIGINT,
    events_erased        BIGINT NOT NULL,
    deliveries_cancelled BIGINT NOT NULL,
    create_time          BIGINT NOT NULL
);

CREATE INDEX erasures_by_space ON erasures (space_id, seq);
