-- The W3C `traceparent` of the publish that stored an event, set only while trace export
-- is on: each attempt's span is a child of it, on whichever node makes the attempt.
ALTER TABLE events ADD COLUMN trace_parent TEXT;
