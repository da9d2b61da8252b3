-- The nodes serving this database, by their heartbeats. Each node upserts its row every
-- heartbeat interval, stamped by the database's clock (microseconds since the epoch),
-- with its own timeout: once its heartbeat is older than that, the node is dead and the
-- deliveries it leased (deliveries.lease_owner = nodes.id) are claimable at once,
-- without waiting for their leases to run out. Rows of nodes silent for an hour go.
CREATE TABLE nodes (
    id             TEXT PRIMARY KEY,
    host           TEXT NOT NULL,
    pid            BIGINT NOT NULL,
    started_time   BIGINT NOT NULL,
    heartbeat_time BIGINT NOT NULL,
    timeout_micros BIGINT NOT NULL
);

-- A node whose deliveries were taken over may still record the attempts it had in
-- flight; they stay as history beside the new owner's attempt of the same number, so an
-- attempt is one row per start, not per number.
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_pkey;
ALTER TABLE delivery_attempts ADD PRIMARY KEY (delivery_id, attempt, start_time);
