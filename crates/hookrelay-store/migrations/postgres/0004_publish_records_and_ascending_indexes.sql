-- From this version a publish's idempotency record holds its event's id instead of a
-- copy of its answer (the answer is rendered again from the event on a replay). Older
-- nodes would replay such a record as it is, so this migration exists also to make them
-- refuse this database: upgrade every node before the new ones take publishes.
--
-- The listing indexes in ascending order, as on SQLite: a new event or delivery goes at
-- the end of its space's or webhook's entries, where B-tree inserts are cheapest.
-- Newest-first listings read them backwards.
DROP INDEX events_by_space;
CREATE INDEX events_by_space ON events (space_id, seq);
DROP INDEX deliveries_by_webhook;
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq);
