-- Each rate-limited webhook's token bucket (core::pace): claims on every node debit it,
-- so deliveries start no faster than the webhook's maxDeliveriesPerSecond. `millionths`
-- of a token counted at `counted_at`; claims pass the webhook over until `ready_at`,
-- when its next whole token is there. A webhook that was never limited has no row.
CREATE TABLE webhook_pace (
    webhook_id TEXT PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    millionths BIGINT NOT NULL,
    counted_at BIGINT NOT NULL,
    ready_at   BIGINT NOT NULL
);
