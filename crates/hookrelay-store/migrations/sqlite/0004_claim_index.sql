-- Claims take each webhook's oldest due deliveries: an index in exactly that order lets
-- a claim read a few entries per webhook instead of ranking every pending row.
CREATE INDEX deliveries_pending_by_webhook_due ON deliveries (webhook_id, next_attempt_time, seq)
    WHERE status = 'pending';
DROP INDEX deliveries_pending_by_webhook;
